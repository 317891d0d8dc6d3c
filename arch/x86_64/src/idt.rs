//! The interrupt descriptor table, shared by all CPUs: every vector goes to
//! a stub in `trap_entry`, on an IST stack (see that module for why).

use core::mem::size_of;

use x86_64::instructions::tables::lidt;
use x86_64::structures::DescriptorTablePointer;

use crate::percpu::{IST_DOUBLE_FAULT, IST_ENTRY, IST_MACHINE_CHECK, IST_NMI, KERNEL_CS};

#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attr: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

impl Gate {
    const fn missing() -> Self {
        Self {
            offset_low: 0,
            selector: 0,
            ist: 0,
            type_attr: 0,
            offset_mid: 0,
            offset_high: 0,
            reserved: 0,
        }
    }

    fn interrupt_gate(handler: u64, ist: u16) -> Self {
        Self {
            offset_low: handler as u16,
            selector: KERNEL_CS,
            ist: ist as u8,
            // Present, DPL 0, 64-bit interrupt gate (masks interrupts on entry).
            type_attr: 0x8e,
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

#[repr(C, align(16))]
struct Idt([Gate; 256]);

static mut IDT: Idt = Idt([Gate::missing(); 256]);

unsafe extern "C" {
    /// 256 stubs, 16 bytes apart, one per vector.
    static keel_x86_64_vectors: [u8; 256 * 16];
}

/// Fill the IDT (boot CPU, once).
pub fn init() {
    let base = (&raw const keel_x86_64_vectors) as u64;
    let idt = &raw mut IDT;
    for vector in 0..256 {
        let ist = match vector {
            2 => IST_NMI,
            8 => IST_DOUBLE_FAULT,
            18 => IST_MACHINE_CHECK,
            _ => IST_ENTRY,
        };
        // SAFETY: called once on the boot CPU before any other CPU runs or
        // any interrupt is enabled, so nothing reads the table meanwhile.
        unsafe { (*idt).0[vector] = Gate::interrupt_gate(base + vector as u64 * 16, ist) };
    }
}

/// Load the IDT on the calling CPU.
pub fn load() {
    let ptr = DescriptorTablePointer {
        limit: (size_of::<Idt>() - 1) as u16,
        base: x86_64::VirtAddr::new((&raw const IDT) as u64),
    };
    // SAFETY: the IDT is static and fully initialised by `init`.
    unsafe { lidt(&ptr) };
}
