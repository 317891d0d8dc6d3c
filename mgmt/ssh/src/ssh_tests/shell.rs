//! The shell's commands against the fake system: output, errors and exit
//! statuses, and what they did to the system.

use alloc::string::String;
use alloc::vec;

use keel_mgmt::system::{AppState, PowerAction};
use keel_mgmt::testing::{Fake, Node};

use crate::shell::{Action, Shell, bytes, duration, split};

fn run(sh: &mut Shell, fake: &mut Fake, line: &str) -> (String, String, u8) {
    let o = sh.run(fake, line);
    (o.stdout, o.stderr, o.status)
}

#[test]
fn splits_words_with_quotes_and_escapes() {
    assert_eq!(split("  ls   -l /etc ").unwrap(), vec!["ls", "-l", "/etc"]);
    assert_eq!(
        split(r#"echo 'a b' "c \"d\"" e\ f"#).unwrap(),
        vec!["echo", "a b", "c \"d\"", "e f"]
    );
    assert_eq!(split("x ''").unwrap(), vec!["x", ""]);
    assert!(split("echo 'open").is_err());
    assert!(split("echo \"open").is_err());
    assert!(split("echo \\").is_err());
}

#[test]
fn resolves_paths_against_the_current_directory() {
    let mut sh = Shell::new();
    let mut fake = Fake::new();
    assert_eq!(sh.resolve("etc//hosts"), "/etc/hosts");
    assert_eq!(sh.resolve("../../x/./y/.."), "/x");
    assert_eq!(run(&mut sh, &mut fake, "cd /etc").2, 0);
    assert_eq!(sh.resolve("hosts"), "/etc/hosts");
    assert_eq!(sh.resolve(".."), "/");
    assert_eq!(run(&mut sh, &mut fake, "pwd").0, "/etc\n");
}

#[test]
fn cd_refuses_files_and_missing_directories() {
    let mut sh = Shell::new();
    let mut fake = Fake::new();
    let (_, err, status) = run(&mut sh, &mut fake, "cd /etc/hosts");
    assert_eq!(
        (err.as_str(), status),
        ("cd: /etc/hosts: not a directory\n", 1)
    );
    let (_, err, status) = run(&mut sh, &mut fake, "cd nope");
    assert_eq!((err.as_str(), status), ("cd: nope: not found\n", 1));
    assert_eq!(sh.cwd(), "/");
    run(&mut sh, &mut fake, "cd etc");
    run(&mut sh, &mut fake, "cd");
    assert_eq!(sh.cwd(), "/");
}

#[test]
fn ls_lists_sorted_with_kinds_and_long_format() {
    let mut sh = Shell::new();
    let mut fake = Fake::new();
    let (out, _, status) = run(&mut sh, &mut fake, "ls");
    assert_eq!((out.as_str(), status), ("etc/\nro/\n", 0));
    let (out, _, _) = run(&mut sh, &mut fake, "ls -l /etc");
    assert_eq!(out, "-rw-r--r--         20 2023-11-14 22:13 hosts\n");
    let (out, _, _) = run(&mut sh, &mut fake, "ls /etc/hosts");
    assert_eq!(out, "/etc/hosts\n");
    let (out, err, status) = run(&mut sh, &mut fake, "ls /etc /missing");
    assert_eq!(out, "/etc:\nhosts\n");
    assert_eq!((err.as_str(), status), ("ls: /missing: not found\n", 1));
}

#[test]
fn cat_prints_files_and_reports_each_failure() {
    let mut sh = Shell::new();
    let mut fake = Fake::new();
    let (out, err, status) = run(&mut sh, &mut fake, "cat /etc/hosts /etc /nope");
    assert_eq!(out, "127.0.0.1 localhost\n");
    assert_eq!(err, "cat: /etc: is a directory\ncat: /nope: not found\n");
    assert_eq!(status, 1);
    assert_eq!(fake.open_handles, 0);
    assert_eq!(run(&mut sh, &mut fake, "cat").2, 2);
}

#[test]
fn cat_stops_at_its_limit_and_says_so() {
    let mut sh = Shell::new();
    let mut fake = Fake::new();
    fake.files.insert(
        "/big".into(),
        Node::File(vec![b'x'; crate::shell::CAT_LIMIT + 1]),
    );
    fake.files.insert(
        "/exact".into(),
        Node::File(vec![b'y'; crate::shell::CAT_LIMIT]),
    );
    let o = sh.run(&mut fake, "cat /big");
    assert_eq!(o.stdout.len(), crate::shell::CAT_LIMIT);
    assert!(
        o.stderr.contains("download big files with the REST API"),
        "{}",
        o.stderr
    );
    assert_eq!(o.status, 1);
    let o = sh.run(&mut fake, "cat /exact");
    assert_eq!((o.stdout.len(), o.status), (crate::shell::CAT_LIMIT, 0));
    assert_eq!(fake.open_handles, 0);
}

#[test]
fn mkdir_cp_mv_rm_change_the_tree() {
    let mut sh = Shell::new();
    let mut fake = Fake::new();
    assert_eq!(run(&mut sh, &mut fake, "mkdir /srv /srv/data").2, 0);
    assert_eq!(run(&mut sh, &mut fake, "cp /etc/hosts /srv").2, 0);
    assert_eq!(fake.file("/srv/hosts").unwrap(), b"127.0.0.1 localhost\n");
    run(&mut sh, &mut fake, "cd /srv");
    assert_eq!(run(&mut sh, &mut fake, "mv hosts data/h2").2, 0);
    assert!(fake.file("/srv/hosts").is_none());
    assert_eq!(fake.file("/srv/data/h2").unwrap(), b"127.0.0.1 localhost\n");
    let (_, err, status) = run(&mut sh, &mut fake, "rm data");
    assert_eq!(
        (err.as_str(), status),
        ("rm: data: is a directory (use rm -r)\n", 1)
    );
    assert_eq!(run(&mut sh, &mut fake, "rm -r data").2, 0);
    assert!(!fake.files.contains_key("/srv/data"));
    assert!(!fake.files.contains_key("/srv/data/h2"));
    assert_eq!(fake.open_handles, 0);
}

#[test]
fn file_commands_report_errors_with_status() {
    let mut sh = Shell::new();
    let mut fake = Fake::new();
    let (_, err, status) = run(&mut sh, &mut fake, "mkdir /etc");
    assert_eq!((err.as_str(), status), ("mkdir: /etc: already exists\n", 1));
    let (_, err, status) = run(&mut sh, &mut fake, "mkdir /ro/x");
    assert_eq!(
        (err.as_str(), status),
        ("mkdir: /ro/x: permission denied\n", 1)
    );
    let (_, err, _) = run(&mut sh, &mut fake, "cp /etc /x");
    assert_eq!(err, "cp: /etc: directories are not supported\n");
    let (_, err, _) = run(&mut sh, &mut fake, "cp /etc/hosts /etc/hosts");
    assert_eq!(err, "cp: /etc/hosts and /etc/hosts are the same file\n");
    let (_, err, status) = run(&mut sh, &mut fake, "cp onlyone");
    assert_eq!((err.as_str(), status), ("usage: cp SRC DST\n", 2));
    let (_, err, _) = run(&mut sh, &mut fake, "rm /");
    assert_eq!(err, "rm: refusing to remove /\n");
    let (_, err, _) = run(&mut sh, &mut fake, "mv /etc/hosts /ro/hosts");
    assert_eq!(err, "mv: /etc/hosts -> /ro/hosts: permission denied\n");
    assert!(
        fake.file("/etc/hosts").is_some(),
        "a failed mv keeps the source"
    );
}

#[test]
fn file_commands_survive_random_failures_without_leaking_handles() {
    let mut sh = Shell::new();
    let mut fake = Fake::new();
    fake.chaos = 3;
    for i in 0..200 {
        let line = match i % 6 {
            0 => "cp /etc/hosts /c",
            1 => "cat /etc/hosts /c",
            2 => "ls -l / /etc",
            3 => "mv /c /d",
            4 => "rm -r /d /c",
            _ => "mkdir /m",
        };
        let o = sh.run(&mut fake, line);
        assert!(
            o.status == 0 || !o.stderr.is_empty(),
            "{line}: failed silently"
        );
    }
    assert_eq!(fake.open_handles, 0);
}

#[test]
fn system_facts() {
    let mut sh = Shell::new();
    let mut fake = Fake::new();
    let (out, _, _) = run(&mut sh, &mut fake, "free");
    assert!(
        out.contains("Mem:       1073741824      536870912      536870912"),
        "{out}"
    );
    assert!(out.contains("1.0G"), "{out}");
    assert_eq!(run(&mut sh, &mut fake, "uptime").0, "up 0:00:03\n");
    assert_eq!(run(&mut sh, &mut fake, "date").0, "2026-11-30T00:46:36Z\n");
    assert_eq!(run(&mut sh, &mut fake, "dmesg").0, "keel: booted\n");
    let (out, _, _) = run(&mut sh, &mut fake, "df");
    assert!(
        out.contains("keel/root            zfs          256M      20B     256M    0% /"),
        "{out}"
    );
    assert_eq!(
        run(&mut sh, &mut fake, "uname -a").0,
        "Keel keel 0.1.0 test x86_64\n"
    );
    assert_eq!(run(&mut sh, &mut fake, "hostname").0, "keel\n");
}

#[test]
fn ps_and_top_show_threads_with_cpu_share() {
    let mut sh = Shell::new();
    let mut fake = Fake::new();
    let (out, _, _) = run(&mut sh, &mut fake, "ps");
    assert_eq!(
        out,
        "    ID STATE     CPU   CPU%         TIME  NAME\n     1 runnable    0    0.0      0:00.00  idle\n"
    );
    let (out, _, status) = run(&mut sh, &mut fake, "top");
    assert!(
        out.starts_with("up 0:00:03, 1 threads (0 running), memory 512M used of 1.0G"),
        "{out}"
    );
    assert!(out.contains("  idle\n"), "{out}");
    assert_eq!(status, 0);
}

#[test]
fn network_commands() {
    let mut sh = Shell::new();
    let mut fake = Fake::new();
    let (out, _, _) = run(&mut sh, &mut fake, "ifconfig");
    assert!(
        out.starts_with(
            "eth0: UP mtu 1500\n        ether 52:54:00:12:34:56\n        inet 10.0.2.15/24\n"
        ),
        "{out}"
    );
    assert!(out.contains("RX packets 10 bytes 1000"), "{out}");
    assert_eq!(
        run(&mut sh, &mut fake, "ip route").0,
        "default via 10.0.2.2 dev eth0\n"
    );
    assert!(
        run(&mut sh, &mut fake, "ip a")
            .0
            .contains("    inet 10.0.2.15/24\n")
    );
    assert_eq!(run(&mut sh, &mut fake, "ip bogus").2, 2);
    assert!(
        run(&mut sh, &mut fake, "netstat")
            .0
            .starts_with("tcp: 1 listening, 2 established, 0 other\n")
    );
}

#[test]
fn environment_commands() {
    let mut sh = Shell::new();
    let mut fake = Fake::new();
    assert_eq!(run(&mut sh, &mut fake, "export A_1=x=y").2, 0);
    assert_eq!(fake.env.get("A_1").map(String::as_str), Some("x=y"));
    assert_eq!(run(&mut sh, &mut fake, "env").0, "A_1=x=y\nPATH=/bin\n");
    assert_eq!(run(&mut sh, &mut fake, "export 1A=x").2, 1);
    assert_eq!(run(&mut sh, &mut fake, "export NOVALUE").2, 2);
    assert_eq!(run(&mut sh, &mut fake, "unset A_1").2, 0);
    let (_, err, status) = run(&mut sh, &mut fake, "unset A_1");
    assert_eq!((err.as_str(), status), ("unset: A_1: not found\n", 1));
}

#[test]
fn apps_run_list_log_and_kill() {
    let mut sh = Shell::new();
    let mut fake = Fake::new();
    fake.files.insert("/srv".into(), Node::Dir);
    fake.files.insert("/srv/app".into(), Node::File(vec![0x7f]));
    run(&mut sh, &mut fake, "cd /srv");
    let (out, _, status) = run(&mut sh, &mut fake, "run app -p 80");
    assert_eq!((out.as_str(), status), ("started app 2: /srv/app\n", 0));
    assert_eq!(fake.apps[1].argv, vec!["app", "-p", "80"]);
    assert_eq!(fake.apps[1].path, "/srv/app");
    let (_, err, status) = run(&mut sh, &mut fake, "run /nope");
    assert_eq!((err.as_str(), status), ("run: /nope: not found\n", 1));
    let (out, _, _) = run(&mut sh, &mut fake, "apps");
    assert_eq!(
        out,
        "  ID STATE            COMMAND\n   1 exited 0         true\n   2 running          app -p 80\n"
    );
    let (out, err, _) = run(&mut sh, &mut fake, "logs 1");
    assert_eq!((out.as_str(), err.as_str()), ("hello\nworld\n", "oops\n"));
    assert_eq!(run(&mut sh, &mut fake, "kill -KILL 2").2, 0);
    assert_eq!(fake.signals, vec![(2, 9)]);
    assert_eq!(fake.apps[1].state, AppState::Killed { signal: 9 });
    let (_, err, _) = run(&mut sh, &mut fake, "kill 2");
    assert_eq!(err, "kill: app 2 has already ended\n");
    let (_, err, _) = run(&mut sh, &mut fake, "kill 99");
    assert_eq!(err, "kill: app 99: no such app\n");
    assert_eq!(run(&mut sh, &mut fake, "kill -BOGUS 1").2, 2);
    assert_eq!(run(&mut sh, &mut fake, "kill abc").2, 2);
    assert!(run(&mut sh, &mut fake, "apps").0.contains("killed SIGKILL"));
}

#[test]
fn power_and_session_actions() {
    let mut sh = Shell::new();
    let mut fake = Fake::new();
    assert_eq!(
        run(&mut sh, &mut fake, "reboot").0,
        "reboot: going down now\n"
    );
    run(&mut sh, &mut fake, "poweroff");
    assert_eq!(fake.power, vec![PowerAction::Reboot, PowerAction::PowerOff]);
    assert_eq!(sh.run(&mut fake, "exit").action, Action::Exit);
    assert_eq!(sh.run(&mut fake, "clear").action, Action::Clear);
}

#[test]
fn unknown_commands_and_empty_lines() {
    let mut sh = Shell::new();
    let mut fake = Fake::new();
    let (_, err, status) = run(&mut sh, &mut fake, "frobnicate now");
    assert_eq!(
        (err.as_str(), status),
        ("frobnicate: command not found (try 'help')\n", 127)
    );
    assert_eq!(
        run(&mut sh, &mut fake, "   "),
        (String::new(), String::new(), 0)
    );
    let (_, err, status) = run(&mut sh, &mut fake, "echo 'x");
    assert_eq!((err.as_str(), status), ("keel: unterminated '\n", 2));
    let help = run(&mut sh, &mut fake, "help").0;
    for cmd in [
        "ls", "cat", "cd", "pwd", "mkdir", "rm", "cp", "mv", "df", "free", "uptime", "date",
        "dmesg", "ps", "top", "ifconfig", "ip", "netstat", "env", "run", "kill", "reboot",
        "poweroff",
    ] {
        assert!(
            help.contains(&alloc::format!("\n  {cmd}")),
            "help lacks {cmd}"
        );
        // Every command in the help runs (no "command not found").
        let o = Shell::new().run(&mut Fake::new(), cmd);
        assert_ne!(o.status, 127, "{cmd}");
    }
}

#[test]
fn human_figures() {
    assert_eq!(bytes(0), "0B");
    assert_eq!(bytes(1023), "1023B");
    assert_eq!(bytes(1536), "1.5K");
    assert_eq!(bytes(10 * 1024 * 1024), "10M");
    assert_eq!(bytes(u64::MAX), "16384P");
    assert_eq!(duration(0), "0:00:00");
    assert_eq!(duration(90_061_000_000_000), "1 day, 1:01:01");
    assert_eq!(
        duration(3 * 86_400_000_000_000 + 59_000_000_000),
        "3 days, 0:00:59"
    );
}
