//! Frame allocator, heap, page mapping and fault containment, on the real machine.

use alloc::boxed::Box;
use alloc::vec::Vec;

use keel_hal::PageFlags;

use crate::ktest::TestResult;
use crate::memory::{PAGE_SIZE, frame, phys_to_virt, vmap};
use crate::sched::{self, ExitReason, Options};
use crate::{check, check_eq, ktest};

#[ktest]
fn frames_are_distinct_aligned_and_return_to_the_pool() -> TestResult {
    let (free_before, _) = frame::stats();
    let mut blocks = Vec::new();
    for order in [0usize, 0, 1, 3, 9, 0, 4] {
        let pa = frame::alloc_zeroed(order)
            .ok_or_else(|| crate::ktest::TestFailure::Failed("out of frames".into()))?;
        check!(
            pa.is_aligned((PAGE_SIZE << order) as u64),
            "order {order} block {pa:?} misaligned"
        );
        // Write a pattern through the direct map and read it back.
        let p = phys_to_virt(pa).as_ptr::<u64>();
        // SAFETY: the block was just allocated to this test and is mapped.
        unsafe {
            check_eq!(p.read(), 0);
            p.write(0xfeed_0000 + order as u64);
        }
        blocks.push((pa, order));
    }
    for (i, &(a, oa)) in blocks.iter().enumerate() {
        for &(b, ob) in &blocks[i + 1..] {
            let (a0, a1) = (a.0, a.0 + (PAGE_SIZE << oa) as u64);
            let (b0, b1) = (b.0, b.0 + (PAGE_SIZE << ob) as u64);
            check!(a1 <= b0 || b1 <= a0, "blocks {a:?} and {b:?} overlap");
        }
    }
    for (pa, order) in blocks {
        frame::free(pa, order);
    }
    check_eq!(frame::stats().0, free_before);
    Ok(())
}

#[ktest]
fn heap_survives_many_sizes_on_every_cpu() -> TestResult {
    let cpus: Vec<usize> = sched::online().collect();
    let workers: Vec<_> = cpus
        .iter()
        .map(|&cpu| {
            sched::spawn_with(
                Options {
                    name: alloc::format!("heap/{cpu}").into(),
                    pin: Some(cpu),
                    killable: true,
                },
                move || {
                    let mut seed = 0x1234_5678u32 ^ cpu as u32;
                    let mut live: Vec<Box<[u8]>> = Vec::new();
                    for round in 0..3000u32 {
                        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        let size = match seed >> 29 {
                            0..=4 => (seed >> 8) as usize % 64 + 1,
                            5 | 6 => (seed >> 8) as usize % 4096 + 1,
                            _ => (seed >> 8) as usize % 200_000 + 1,
                        };
                        let fill = (round as u8) ^ (cpu as u8);
                        live.push(alloc::vec![fill; size].into_boxed_slice());
                        if live.len() > 40 {
                            let victim = live.swap_remove(seed as usize % live.len());
                            let first = victim[0];
                            assert!(victim.iter().all(|&b| b == first), "heap block corrupted");
                        }
                    }
                },
            )
        })
        .collect();
    for w in workers {
        check_eq!(w.join(), ExitReason::Returned);
    }
    Ok(())
}

#[ktest]
fn map_translate_unmap_kernel_pages() -> TestResult {
    let va = vmap::reserve(4 * PAGE_SIZE, PAGE_SIZE).expect("kernel virtual space");
    let pa = frame::alloc_zeroed(2).expect("frames");
    vmap::map(va, pa, 4 * PAGE_SIZE, PageFlags::DATA)
        .map_err(|e| crate::ktest::TestFailure::Failed(alloc::format!("{e:?}")))?;
    check_eq!(
        vmap::translate(va.add(PAGE_SIZE + 8)).map(|t| t.0),
        Some(pa.add(PAGE_SIZE as u64 + 8))
    );
    // SAFETY: just mapped, writable, owned by this test.
    unsafe { va.add(3 * PAGE_SIZE).as_ptr::<u32>().write_volatile(0xabcd) };
    // SAFETY: the direct map aliases the same frame.
    let seen = unsafe {
        phys_to_virt(pa.add(3 * PAGE_SIZE as u64))
            .as_ptr::<u32>()
            .read_volatile()
    };
    check_eq!(seen, 0xabcd);
    let mut unmapped = 0;
    vmap::unmap(va.add(PAGE_SIZE), 2 * PAGE_SIZE, &mut |_, _, n| {
        unmapped += n
    })
    .unwrap();
    crate::smp::on_each_cpu(&|| keel_hal::machine::flush_tlb_all());
    check_eq!(unmapped, 2 * PAGE_SIZE);
    check!(vmap::translate(va.add(PAGE_SIZE)).is_none());
    check!(vmap::translate(va).is_some() && vmap::translate(va.add(3 * PAGE_SIZE)).is_some());
    // Touching the hole must fault; a killable thread takes the hit.
    let hole = va.add(2 * PAGE_SIZE).0;
    let t = sched::spawn_with(
        Options {
            name: "toucher".into(),
            pin: None,
            killable: true,
        },
        move || {
            // SAFETY: deliberately reads an unmapped page to provoke a fault.
            let _ = unsafe { (hole as *const u32).read_volatile() };
        },
    );
    match t.join() {
        ExitReason::Faulted(why) => {
            check!(why.contains("not mapped"), "unexpected fault text: {why}")
        }
        other => check!(false, "reading an unmapped page did not fault: {other:?}"),
    }
    vmap::unmap(va, 4 * PAGE_SIZE, &mut |_, _, _| {}).unwrap();
    frame::free(pa, 2);
    Ok(())
}

#[ktest]
fn deliberate_page_fault_is_caught_and_reported() -> TestResult {
    let t = sched::spawn_with(
        Options {
            name: "faulter".into(),
            pin: None,
            killable: true,
        },
        || {
            // SAFETY: deliberately writes to an address that is never mapped.
            unsafe { (0xdead_b000usize as *mut u64).write_volatile(1) };
        },
    );
    match t.join() {
        ExitReason::Faulted(why) => {
            check!(
                why.contains("write at 0xdeadb000"),
                "report does not name the access: {why}"
            );
        }
        ExitReason::Returned => check!(false, "a write to 0xdeadb000 did not fault"),
    }
    Ok(())
}

#[ktest]
fn kernel_stack_overflow_hits_the_guard_page() -> TestResult {
    #[allow(unconditional_recursion)] // the guard page is the exit
    fn recurse(depth: u64, sink: &mut [u8; 512]) -> u64 {
        sink[(depth % 512) as usize] = depth as u8;
        let mut next = [0u8; 512];
        core::hint::black_box(&mut next);
        depth + recurse(depth + 1, &mut next)
    }
    let t = sched::spawn_with(
        Options {
            name: "overflow".into(),
            pin: None,
            killable: true,
        },
        || {
            let mut sink = [0u8; 512];
            core::hint::black_box(recurse(0, &mut sink));
        },
    );
    match t.join() {
        ExitReason::Faulted(why) => check!(
            why.contains("stack overflow"),
            "not reported as overflow: {why}"
        ),
        ExitReason::Returned => check!(false, "unbounded recursion returned"),
    }
    Ok(())
}

#[ktest]
fn frames_above_4_gib_are_reachable() -> TestResult {
    use crate::memory::frame::MAX_ORDER;
    // Take 1 GiB blocks until one lies above 4 GiB (touch-free until used).
    let mut held = Vec::new();
    let mut high = None;
    while let Some(pa) = frame::alloc(MAX_ORDER) {
        if pa.0 >= 1 << 32 {
            high = Some(pa);
            break;
        }
        held.push(pa);
    }
    let result = match high {
        None => Err(crate::ktest::TestFailure::Skipped(
            "no RAM above 4 GiB in this VM".into(),
        )),
        Some(pa) => {
            let p = phys_to_virt(pa.add(0x1234 * 8)).as_ptr::<u64>();
            // SAFETY: the block is ours; writing through the direct map must work.
            let seen = unsafe {
                p.write_volatile(0x4b45_454c);
                p.read_volatile()
            };
            frame::free(pa, MAX_ORDER);
            if seen == 0x4b45_454c {
                Ok(())
            } else {
                Err(crate::ktest::TestFailure::Failed(alloc::format!(
                    "read back {seen:#x} at {pa:?}"
                )))
            }
        }
    };
    for pa in held {
        frame::free(pa, MAX_ORDER);
    }
    result
}
