//! CPU features: what CPUID reports, and turning on what apps need
//! (SSE, XSAVE with AVX/AVX-512 state) and what makes thread switches cheap
//! (FSGSBASE, used by the kernel only), while keeping off what apps at CPL0
//! must not meet (SMEP/SMAP).

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use raw_cpuid::CpuId;
use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};
use x86_64::registers::xcontrol::{XCr0, XCr0Flags};

static XSAVE: AtomicBool = AtomicBool::new(false);
static XSAVE_SIZE: AtomicU32 = AtomicU32::new(512);
static XCR0_BITS: AtomicU64 = AtomicU64::new(0);
static X2APIC: AtomicBool = AtomicBool::new(false);
static TSC_DEADLINE: AtomicBool = AtomicBool::new(false);
static PAGE_1G: AtomicBool = AtomicBool::new(false);
static HYPERVISOR: AtomicBool = AtomicBool::new(false);
/// CR4.FSGSBASE is on: the kernel moves FS bases with RDFSBASE/WRFSBASE.
/// (Apps are not told through AT_HWCAP2: GS belongs to the kernel.)
pub static FSGSBASE: AtomicBool = AtomicBool::new(false);

/// Enable FP/SIMD state for apps on the calling CPU. The first call also
/// records the features (all CPUs of a VM are alike).
pub fn init_this_cpu() {
    let cpuid = CpuId::new();
    let f = cpuid.get_feature_info();
    let has = |pred: fn(&raw_cpuid::FeatureInfo) -> bool| f.as_ref().is_some_and(pred);
    X2APIC.store(has(|f| f.has_x2apic()), Ordering::Relaxed);
    TSC_DEADLINE.store(has(|f| f.has_tsc_deadline()), Ordering::Relaxed);
    HYPERVISOR.store(has(|f| f.has_hypervisor()), Ordering::Relaxed);
    let gb = cpuid
        .get_extended_processor_and_feature_identifiers()
        .is_some_and(|e| e.has_1gib_pages());
    PAGE_1G.store(gb, Ordering::Relaxed);
    if cpuid
        .get_extended_feature_info()
        .is_some_and(|e| e.has_fsgsbase())
    {
        // SAFETY: the CPU supports it; it only makes four instructions legal.
        unsafe { Cr4::update(|c| c.insert(Cr4Flags::FSGSBASE)) };
        FSGSBASE.store(true, Ordering::Relaxed);
    }

    // SAFETY: enabling SSE only changes how FP/SIMD instructions behave; the
    // kernel itself is compiled soft-float and never uses them.
    unsafe {
        Cr0::update(|c| {
            c.remove(Cr0Flags::EMULATE_COPROCESSOR | Cr0Flags::TASK_SWITCHED);
            c.insert(Cr0Flags::MONITOR_COPROCESSOR | Cr0Flags::NUMERIC_ERROR);
        });
        Cr4::update(|c| c.insert(Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE));
    }
    if has(|f| f.has_xsave()) {
        // SAFETY: XSAVE is supported; XCR0 gets only bits the CPU reports.
        unsafe { Cr4::update(|c| c.insert(Cr4Flags::OSXSAVE)) };
        let supported = cpuid.get_extended_state_info().map_or(0b11, |s| {
            let mut bits = 0b11u64; // x87, SSE
            if s.xcr0_supports_avx_256() {
                bits |= 1 << 2;
            }
            if s.xcr0_supports_avx512_opmask()
                && s.xcr0_supports_avx512_zmm_hi256()
                && s.xcr0_supports_avx512_zmm_hi16()
            {
                bits |= 0b111 << 5;
            }
            bits
        });
        let flags = XCr0Flags::from_bits_truncate(supported);
        // SAFETY: the flag set is a consistent subset of what CPUID reports.
        unsafe { XCr0::write(flags) };
        let size = CpuId::new()
            .get_extended_state_info()
            .map_or(512, |s| s.xsave_area_size_enabled_features());
        XSAVE_SIZE.store(size, Ordering::Relaxed);
        XCR0_BITS.store(supported, Ordering::Relaxed);
        XSAVE.store(true, Ordering::Relaxed);
    }
}

/// XSAVE is in use (else FXSAVE).
pub fn has_xsave() -> bool {
    XSAVE.load(Ordering::Relaxed)
}
/// Bytes of the XSAVE area for the enabled state (512 with FXSAVE).
pub fn fp_area_size() -> usize {
    XSAVE_SIZE.load(Ordering::Relaxed) as usize
}
/// The XCR0 bits the kernel enabled (which state components XSAVE covers).
pub fn xcr0() -> u64 {
    XCR0_BITS.load(Ordering::Relaxed)
}

/// x2APIC mode is available.
pub fn has_x2apic() -> bool {
    X2APIC.load(Ordering::Relaxed)
}
/// The local APIC timer has TSC-deadline mode.
pub fn has_tsc_deadline() -> bool {
    TSC_DEADLINE.load(Ordering::Relaxed)
}
/// 1 GiB pages are available.
pub fn has_1g_pages() -> bool {
    PAGE_1G.load(Ordering::Relaxed)
}
/// Running under a hypervisor (no need for real-hardware start-up delays).
pub fn under_hypervisor() -> bool {
    HYPERVISOR.load(Ordering::Relaxed)
}

/// 64 random bits from RDSEED (preferred) or RDRAND, retrying a few times
/// as Intel advises; `None` if the CPU has neither or they keep failing.
pub fn hardware_random() -> Option<u64> {
    let cpuid = CpuId::new();
    let seed = cpuid
        .get_extended_feature_info()
        .is_some_and(|e| e.has_rdseed());
    let rand = cpuid.get_feature_info().is_some_and(|f| f.has_rdrand());
    for _ in 0..10 {
        let mut value = 0u64;
        // SAFETY: the instruction exists (checked via CPUID); it only writes
        // `value` and the carry flag.
        let ok = unsafe {
            if seed {
                core::arch::x86_64::_rdseed64_step(&mut value)
            } else if rand {
                core::arch::x86_64::_rdrand64_step(&mut value)
            } else {
                return None;
            }
        };
        if ok == 1 {
            return Some(value);
        }
    }
    None
}

/// Name the hypervisor reports in CPUID leaf 0x40000000, if any.
pub fn hypervisor_name() -> Option<&'static str> {
    let info = CpuId::new().get_hypervisor_info()?;
    Some(match info.identify() {
        raw_cpuid::Hypervisor::KVM => "KVM",
        raw_cpuid::Hypervisor::Xen => "Xen",
        raw_cpuid::Hypervisor::HyperV => "Hyper-V",
        raw_cpuid::Hypervisor::VMware => "VMware",
        raw_cpuid::Hypervisor::QEMU => "QEMU TCG",
        _ => "unknown hypervisor",
    })
}

/// Feature flags worth knowing about, for banners and /proc/cpuinfo.
pub fn write_features(out: &mut dyn fmt::Write) -> fmt::Result {
    let cpuid = CpuId::new();
    if let Some(b) = cpuid.get_processor_brand_string() {
        write!(out, "{} |", b.as_str().trim())?;
    }
    let f = cpuid.get_feature_info();
    let e = cpuid.get_extended_feature_info();
    let checks: [(&str, bool); 14] = [
        ("sse4_2", f.as_ref().is_some_and(|f| f.has_sse42())),
        ("popcnt", f.as_ref().is_some_and(|f| f.has_popcnt())),
        ("aes", f.as_ref().is_some_and(|f| f.has_aesni())),
        ("xsave", has_xsave()),
        ("avx", f.as_ref().is_some_and(|f| f.has_avx())),
        ("avx2", e.as_ref().is_some_and(|e| e.has_avx2())),
        ("avx512f", e.as_ref().is_some_and(|e| e.has_avx512f())),
        ("bmi2", e.as_ref().is_some_and(|e| e.has_bmi2())),
        ("rdrand", f.as_ref().is_some_and(|f| f.has_rdrand())),
        ("rdseed", e.as_ref().is_some_and(|e| e.has_rdseed())),
        ("x2apic", has_x2apic()),
        ("tsc_deadline", has_tsc_deadline()),
        ("pdpe1gb", has_1g_pages()),
        ("hypervisor", under_hypervisor()),
    ];
    for (name, present) in checks {
        if present {
            write!(out, " {name}")?;
        }
    }
    Ok(())
}
