//! The line editor byte by byte: what it returns and what it echoes.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::editor::{Editor, Event, MAX_LINE};

fn feed(ed: &mut Editor, input: &[u8]) -> (Vec<Event>, String) {
    let mut echo = Vec::new();
    let events = input
        .iter()
        .filter_map(|&b| ed.feed(b, "$ ", &mut echo))
        .collect();
    (events, String::from_utf8_lossy(&echo).into_owned())
}

fn line(s: &str) -> Event {
    Event::Line(s.into())
}

#[test]
fn typing_echoes_and_enter_finishes_the_line() {
    let mut ed = Editor::new();
    let (ev, echo) = feed(&mut ed, b"free\r");
    assert_eq!(ev, vec![line("free")]);
    assert_eq!(echo, "free\r\n");
    // CR LF is one line ending, a lone LF is one too.
    let (ev, _) = feed(&mut ed, b"a\r\nb\n\n");
    assert_eq!(ev, vec![line("a"), line("b"), line("")]);
}

#[test]
fn backspace_and_arrows_edit_in_the_middle() {
    let mut ed = Editor::new();
    // "pd", left, "w" -> "pwd"
    let (ev, echo) = feed(&mut ed, b"pd\x1b[Dw");
    assert!(ev.is_empty());
    assert_eq!((ed.line().as_str(), ed.cursor()), ("pwd", 2));
    assert!(echo.ends_with("\r$ pwd\x1b[K\x1b[1D"), "{echo:?}");
    // right, backspace x2 (DEL and BS both), type
    let (ev, _) = feed(&mut ed, b"\x1b[C\x7f\x08ls\r");
    assert_eq!(ev, vec![line("pls")]);
    // Left at the start and right at the end are ignored.
    let (_, echo) = feed(&mut ed, b"\x1b[D\x1b[C");
    assert_eq!(echo, "");
    // Home/end (both encodings), delete under the cursor, Ctrl-A/E/U.
    let (ev, _) = feed(&mut ed, b"bcd\x1b[Ha\x1b[F!\x1b[1~\x1b[3~\x05?\r");
    assert_eq!(ev, vec![line("bcd!?")]);
    let (ev, _) = feed(&mut ed, b"junk keep\x1bOD\x1bOD\x1bOD\x1bOD\x15\x01>\r");
    assert_eq!(ev, vec![line(">keep")]);
}

#[test]
fn history_walks_up_and_down_and_keeps_the_draft() {
    let mut ed = Editor::new();
    feed(&mut ed, b"one\rtwo\rtwo\r\r");
    assert_eq!(
        ed.history(),
        ["one", "two"],
        "duplicates and blank lines are not kept"
    );
    let (_, echo) = feed(&mut ed, b"dra\x1b[A");
    assert_eq!(ed.line(), "two");
    assert!(echo.ends_with("\r$ two\x1b[K"), "{echo:?}");
    feed(&mut ed, b"\x1b[A");
    assert_eq!(ed.line(), "one");
    let (_, echo) = feed(&mut ed, b"\x1b[A");
    assert_eq!(
        (ed.line().as_str(), echo.as_str()),
        ("one", "\x07"),
        "bell at the oldest"
    );
    feed(&mut ed, b"\x1b[B\x1b[B");
    assert_eq!(
        ed.line(),
        "dra",
        "down past the newest brings the draft back"
    );
    let (ev, _) = feed(&mut ed, b"\x1b[A\x1b[A!\r");
    assert_eq!(ev, vec![line("one!")]);
}

#[test]
fn ctrl_c_drops_the_line_and_ctrl_d_ends_only_when_empty() {
    let mut ed = Editor::new();
    let (ev, echo) = feed(&mut ed, b"rm -r /\x03");
    assert_eq!(
        (ev, echo.ends_with("^C\r\n")),
        (vec![Event::Interrupt], true)
    );
    assert_eq!(ed.line(), "");
    assert!(ed.history().is_empty());
    let (ev, _) = feed(&mut ed, b"ab\x01\x04\r");
    assert_eq!(ev, vec![line("b")], "Ctrl-D inside a line deletes");
    let (ev, _) = feed(&mut ed, b"\x04");
    assert_eq!(ev, vec![Event::Eof]);
}

#[test]
fn utf8_and_garbage() {
    let mut ed = Editor::new();
    let (ev, echo) = feed(&mut ed, "héé\x1b[D€\r".as_bytes());
    assert_eq!(ev, vec![line("hé€é")]);
    assert!(echo.starts_with("hé"));
    // Invalid UTF-8, stray controls, unknown and overlong escapes: ignored.
    let (ev, _) = feed(
        &mut ed,
        b"\xff\xc3(\x00\x07\x1b[99999999999999999999Z\x1bx\x1b[5~ok\r",
    );
    assert_eq!(ev, vec![line("(ok")]);
}

#[test]
fn long_lines_are_bounded() {
    let mut ed = Editor::new();
    let input = alloc::vec![b'a'; MAX_LINE + 10];
    let (_, echo) = feed(&mut ed, &input);
    assert_eq!(ed.line().len(), MAX_LINE);
    assert!(echo.ends_with('\x07'));
}

#[test]
fn random_bytes_never_panic() {
    let mut ed = Editor::new();
    let mut x: u64 = 0x1234_5678_9abc_def1;
    let mut echo = Vec::new();
    for _ in 0..200_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ed.feed((x >> 24) as u8, "$ ", &mut echo);
        assert!(ed.cursor() <= ed.line().chars().count());
        echo.clear();
    }
}
