//! Keel's Linux ABI tests as an ordinary Rust std program: threads and
//! their synchronisation, thread-local storage, files, the environment,
//! time, and panics unwinding across threads. Prints the console protocol
//! the host tools parse; the exit status is 1 if any test failed.

use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

type Outcome = Result<(), String>;

macro_rules! check {
    ($cond:expr) => {
        if !$cond {
            return Err(format!("{}:{}: {}", file!(), line!(), stringify!($cond)));
        }
    };
}

fn threads_mutex_condvar() -> Outcome {
    let state = Arc::new((Mutex::new((0u64, 0u32)), Condvar::new()));
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let state = state.clone();
            std::thread::spawn(move || {
                for _ in 0..10_000 {
                    state.0.lock().unwrap().0 += 1;
                }
                let mut g = state.0.lock().unwrap();
                g.1 += 1;
                state.1.notify_all();
            })
        })
        .collect();
    {
        let (lock, cvar) = &*state;
        let g = cvar.wait_while(lock.lock().unwrap(), |g| g.1 < 16).unwrap();
        check!(g.1 == 16);
    }
    for h in handles {
        h.join().map_err(|_| "a thread panicked")?;
    }
    check!(state.0.lock().unwrap().0 == 160_000);
    Ok(())
}

fn channels_and_barrier() -> Outcome {
    let (tx, rx) = mpsc::channel();
    let barrier = Arc::new(Barrier::new(8));
    let ids: Vec<_> = (0..8u64)
        .map(|i| {
            let tx = tx.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                for j in 0..1000 {
                    tx.send(i * 1000 + j).unwrap();
                }
                std::thread::current().id()
            })
        })
        .collect();
    drop(tx);
    let sum: u64 = rx.iter().sum();
    check!(sum == (0..8000u64).sum::<u64>());
    let distinct: HashSet<_> = ids.into_iter().map(|h| h.join().unwrap()).collect();
    check!(distinct.len() == 8);
    Ok(())
}

thread_local! {
    static LOCAL: std::cell::Cell<u64> = const { std::cell::Cell::new(7) };
}

fn thread_local_storage() -> Outcome {
    LOCAL.with(|l| l.set(1));
    let seen: Vec<u64> = (0..8u64)
        .map(|i| {
            std::thread::spawn(move || {
                let fresh = LOCAL.with(|l| l.get());
                LOCAL.with(|l| l.set(100 + i));
                std::thread::sleep(Duration::from_millis(5));
                fresh * 1000 + LOCAL.with(|l| l.get())
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    for (i, v) in seen.iter().enumerate() {
        check!(*v == 7000 + 100 + i as u64);
    }
    check!(LOCAL.with(|l| l.get()) == 1);
    Ok(())
}

fn files() -> Outcome {
    let dir = std::path::Path::new("/tmp/keel-rust");
    std::fs::create_dir_all(dir.join("a/b")).map_err(|e| e.to_string())?;
    let path = dir.join("a/b/data.bin");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &data).map_err(|e| e.to_string())?;
    check!(std::fs::read(&path).map_err(|e| e.to_string())? == data);
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(&path).map_err(|e| e.to_string())?;
    f.seek(SeekFrom::Start(1000)).map_err(|e| e.to_string())?;
    f.write_all(b"keel").map_err(|e| e.to_string())?;
    f.seek(SeekFrom::Start(998)).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 8];
    f.read_exact(&mut buf).map_err(|e| e.to_string())?;
    check!(&buf[2..6] == b"keel");
    check!(f.metadata().map_err(|e| e.to_string())?.len() == 300_000);
    std::fs::rename(&path, dir.join("moved")).map_err(|e| e.to_string())?;
    check!(!path.exists());
    let names: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    check!(names.contains(&"moved".to_string()) && names.contains(&"a".to_string()));
    std::fs::remove_dir_all(dir).map_err(|e| e.to_string())?;
    check!(!dir.exists());
    check!(std::fs::read("/nonexistent").unwrap_err().kind() == std::io::ErrorKind::NotFound);
    Ok(())
}

fn environment() -> Outcome {
    check!(std::env::var("KEEL_TEST").as_deref() == Ok("1"));
    let args: Vec<String> = std::env::args().collect();
    check!(args.len() >= 2 && args[1] == "all");
    check!(std::env::current_exe().map_err(|e| e.to_string())?.is_absolute());
    check!(std::thread::available_parallelism().map_err(|e| e.to_string())?.get() >= 1);
    check!(std::env::current_dir().map_err(|e| e.to_string())? == std::path::Path::new("/"));
    Ok(())
}

fn time() -> Outcome {
    let start = Instant::now();
    let mut prev = start;
    for _ in 0..100_000 {
        let now = Instant::now();
        check!(now >= prev);
        prev = now;
    }
    std::thread::sleep(Duration::from_millis(30));
    let slept = start.elapsed();
    check!(slept >= Duration::from_millis(30) && slept < Duration::from_secs(5));
    let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_err(|e| e.to_string())?;
    check!(wall.as_secs() > 1_700_000_000);
    Ok(())
}

fn panics_unwind_across_join() -> Outcome {
    std::panic::set_hook(Box::new(|_| {})); // keep the console clean
    let r = std::thread::spawn(|| {
        if std::hint::black_box(true) {
            panic!("deliberate");
        }
    })
    .join();
    let caught = std::panic::catch_unwind(|| {
        let v: Vec<u32> = Vec::new();
        std::hint::black_box(&v)[3]
    });
    let _ = std::panic::take_hook();
    check!(r.is_err());
    check!(caught.is_err());
    Ok(())
}

fn many_short_threads() -> Outcome {
    let counter = Arc::new(AtomicU64::new(0));
    for _ in 0..20 {
        let batch: Vec<_> = (0..25)
            .map(|_| {
                let c = counter.clone();
                std::thread::spawn(move || c.fetch_add(1, Ordering::Relaxed))
            })
            .collect();
        for h in batch {
            h.join().unwrap();
        }
    }
    check!(counter.load(Ordering::Relaxed) == 500);
    Ok(())
}

/// std::net over loopback: a listener thread echoes each connection;
/// clients on IPv4 and IPv6 check the echo byte for byte, then the server
/// side sees the clients' half close as end of file.
fn tcp_loopback_echo() -> Outcome {
    use std::net::{Shutdown, TcpListener, TcpStream, UdpSocket};
    for addr in ["127.0.0.1:0", "[::1]:0"] {
        let listener = TcpListener::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        let server = std::thread::spawn(move || -> std::io::Result<usize> {
            let mut total = 0;
            for _ in 0..3 {
                let (mut s, _) = listener.accept()?;
                let mut buf = Vec::new();
                s.read_to_end(&mut buf)?;
                s.write_all(&buf)?;
                total += buf.len();
            }
            Ok(total)
        });
        let mut seed = 0x2545_f491_u32;
        for client in 0..3 {
            let len = 10_000 + client * 7_777;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect();
            let mut s = TcpStream::connect(local).map_err(|e| format!("connect {local}: {e}"))?;
            s.set_nodelay(true).map_err(|e| e.to_string())?;
            check!(s.peer_addr().map_err(|e| e.to_string())? == local);
            s.write_all(&data).map_err(|e| e.to_string())?;
            s.shutdown(Shutdown::Write).map_err(|e| e.to_string())?;
            let mut back = Vec::new();
            s.read_to_end(&mut back).map_err(|e| e.to_string())?;
            check!(back == data);
        }
        let total = server
            .join()
            .map_err(|_| "server panicked")?
            .map_err(|e| e.to_string())?;
        check!(total == 3 * 10_000 + 7_777 * 3);
    }
    let a = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let b = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    a.send_to(b"datagram", b.local_addr().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 16];
    let (n, from) = b.recv_from(&mut buf).map_err(|e| e.to_string())?;
    check!(&buf[..n] == b"datagram");
    check!(from == a.local_addr().map_err(|e| e.to_string())?);
    Ok(())
}

fn main() {
    let filter = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    let tests: &[(&str, fn() -> Outcome)] = &[
        ("rust::threads_mutex_condvar", threads_mutex_condvar),
        ("rust::channels_and_barrier", channels_and_barrier),
        ("rust::thread_local_storage", thread_local_storage),
        ("rust::files", files),
        ("rust::environment", environment),
        ("rust::time", time),
        ("rust::panics_unwind_across_join", panics_unwind_across_join),
        ("rust::five_hundred_short_threads", many_short_threads),
        ("rust::tcp_loopback_echo", tcp_loopback_echo),
    ];
    let (mut passed, mut failed) = (0, 0);
    for (name, test) in tests {
        if filter != "all" && !name.contains(filter.as_str()) {
            continue;
        }
        println!("~ {name}");
        let start = Instant::now();
        match test() {
            Ok(()) => {
                println!("test {name} ... ok ({} ms)", start.elapsed().as_millis());
                passed += 1;
            }
            Err(why) => {
                println!("test {name} ... FAILED: {why}");
                failed += 1;
            }
        }
    }
    println!("{passed} passed, {failed} failed, 0 skipped");
    std::process::exit(i32::from(failed > 0));
}
