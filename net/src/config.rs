//! Network configuration from the boot command line (`keel.net.*`). Every
//! option applies to the first NIC (eth0); bad values are reported and the
//! default (DHCPv4) is kept, so a typo never leaves the VM unreachable
//! without a message saying why.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::str::FromStr;

use smoltcp::wire::{Ipv4Address, Ipv4Cidr, Ipv6Address, Ipv6Cidr};

/// How eth0 gets its IPv4 address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// Static IPv4 address and prefix (`keel.net.ip=10.0.2.15/24`); None:
    /// DHCP, unless turned off.
    pub ipv4: Option<Ipv4Cidr>,
    /// IPv4 default gateway (`keel.net.gw=10.0.2.2`).
    pub gateway4: Option<Ipv4Address>,
    /// Name servers (`keel.net.dns=1.1.1.1,9.9.9.9`), IPv4 or IPv6.
    pub dns: Vec<smoltcp::wire::IpAddress>,
    /// Static IPv6 address (`keel.net.ip6=fd00::15/64`), in addition to the
    /// link-local one every NIC gets.
    pub ipv6: Option<Ipv6Cidr>,
    /// IPv6 default gateway (`keel.net.gw6=fd00::1`).
    pub gateway6: Option<Ipv6Address>,
    /// DHCPv4 (`keel.net.dhcp=on|off`); on by default, off when a static
    /// IPv4 address is given.
    pub dhcp: bool,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            ipv4: None,
            gateway4: None,
            dns: Vec::new(),
            ipv6: None,
            gateway6: None,
            dhcp: true,
        }
    }
}

/// The option names, for messages and docs.
pub const OPTIONS: &[&str] = &[
    "keel.net.ip",
    "keel.net.gw",
    "keel.net.dns",
    "keel.net.ip6",
    "keel.net.gw6",
    "keel.net.dhcp",
];

/// Parse `(name, value)` pairs (names with their `keel.net.` prefix).
/// Returns the configuration and one line per problem.
pub fn parse(options: &[(String, String)]) -> (NetConfig, Vec<String>) {
    let mut c = NetConfig::default();
    let mut problems = Vec::new();
    let mut dhcp_set = None;
    for (key, value) in options {
        let v = value.as_str();
        match key.as_str() {
            "keel.net.ip" => match Ipv4Cidr::from_str(v) {
                Ok(cidr) if !cidr.address().is_unspecified() && cidr.prefix_len() > 0 => {
                    c.ipv4 = Some(cidr)
                }
                _ => problems.push(format!(
                    "keel.net.ip={v} is not an IPv4 address with a prefix (like 10.0.2.15/24); using DHCP"
                )),
            },
            "keel.net.gw" => match Ipv4Address::from_str(v) {
                Ok(a) if !a.is_unspecified() => c.gateway4 = Some(a),
                _ => problems.push(format!(
                    "keel.net.gw={v} is not an IPv4 address (like 10.0.2.2); no default gateway"
                )),
            },
            "keel.net.dns" => {
                for part in v.split(',') {
                    match smoltcp::wire::IpAddress::from_str(part) {
                        Ok(a) if !a.is_unspecified() => c.dns.push(a),
                        _ => problems.push(format!(
                            "keel.net.dns: {part} is not an IP address; ignored"
                        )),
                    }
                }
            }
            "keel.net.ip6" => match Ipv6Cidr::from_str(v) {
                Ok(cidr) if !cidr.address().is_unspecified() && cidr.prefix_len() > 0 => {
                    c.ipv6 = Some(cidr)
                }
                _ => problems.push(format!(
                    "keel.net.ip6={v} is not an IPv6 address with a prefix (like fd00::15/64); link-local only"
                )),
            },
            "keel.net.gw6" => match Ipv6Address::from_str(v) {
                Ok(a) if !a.is_unspecified() => c.gateway6 = Some(a),
                _ => problems.push(format!(
                    "keel.net.gw6={v} is not an IPv6 address; no IPv6 default gateway"
                )),
            },
            "keel.net.dhcp" => match v {
                "on" | "1" | "yes" => dhcp_set = Some(true),
                "off" | "0" | "no" => dhcp_set = Some(false),
                _ => problems.push(format!("keel.net.dhcp={v} is not on or off; keeping on")),
            },
            other => problems.push(format!(
                "unknown network option {other} (known: {}); ignored",
                OPTIONS.join(", ")
            )),
        }
    }
    c.dhcp = dhcp_set.unwrap_or(c.ipv4.is_none());
    if c.dhcp && c.ipv4.is_some() {
        problems.push("keel.net.dhcp=on with a static keel.net.ip: the static address wins".into());
        c.dhcp = false;
    }
    if let (Some(gw), Some(ip)) = (c.gateway4, c.ipv4)
        && !ip.contains_addr(&gw)
    {
        problems.push(format!(
            "keel.net.gw={gw} is outside {ip}; it is used anyway (reached as a neighbour only if the host routes it)"
        ));
    }
    (c, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn dhcp_by_default() {
        let (c, p) = parse(&[]);
        assert!(c.dhcp);
        assert!(p.is_empty());
    }

    #[test]
    fn static_configuration() {
        let (c, p) = parse(&opts(&[
            ("keel.net.ip", "10.0.2.15/24"),
            ("keel.net.gw", "10.0.2.2"),
            ("keel.net.dns", "10.0.2.3,2001:db8::53"),
            ("keel.net.ip6", "fd00::15/64"),
            ("keel.net.gw6", "fd00::1"),
        ]));
        assert!(p.is_empty(), "{p:?}");
        assert!(!c.dhcp);
        assert_eq!(c.ipv4.unwrap().prefix_len(), 24);
        assert_eq!(c.gateway4, Some(Ipv4Address::new(10, 0, 2, 2)));
        assert_eq!(c.dns.len(), 2);
        assert_eq!(c.ipv6.unwrap().prefix_len(), 64);
        assert!(c.gateway6.is_some());
    }

    #[test]
    fn bad_values_are_reported_and_fall_back() {
        let (c, p) = parse(&opts(&[
            ("keel.net.ip", "10.0.2.300/24"),
            ("keel.net.gw", "router"),
            ("keel.net.dns", "1.1.1.1,nope"),
            ("keel.net.dhcp", "maybe"),
            ("keel.net.ipv4", "x"),
            ("keel.net.ip6", "::/0"),
        ]));
        assert!(c.dhcp);
        assert_eq!(c.ipv4, None);
        assert_eq!(c.gateway4, None);
        assert_eq!(c.dns.len(), 1);
        assert_eq!(c.ipv6, None);
        assert_eq!(p.len(), 6, "{p:?}");
        assert!(p[0].contains("using DHCP"));
    }

    #[test]
    fn dhcp_can_be_turned_off() {
        let (c, _) = parse(&opts(&[("keel.net.dhcp", "off")]));
        assert!(!c.dhcp);
        assert_eq!(c.ipv4, None);
    }
}
