//! The console: editor and shell together, as a terminal sees them.

use alloc::string::String;
use alloc::vec::Vec;

use keel_mgmt::testing::Fake;

use crate::console::Console;

fn type_in(c: &mut Console, fake: &mut Fake, input: &str) -> String {
    let mut out = Vec::new();
    c.input(fake, input.as_bytes(), &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn greets_runs_lines_and_translates_newlines() {
    let mut fake = Fake::new();
    let mut c = Console::new();
    let mut out = Vec::new();
    c.start(&fake, &mut out);
    let out = String::from_utf8(out).unwrap();
    assert_eq!(
        out,
        "Keel 0.1.0 (x86_64) management shell on keel. Type 'help' for commands.\r\nkeel:/$ "
    );
    let out = type_in(&mut c, &mut fake, "cd etc\rcat hosts\r");
    assert_eq!(
        out,
        "cd etc\r\nkeel:/etc$ cat hosts\r\n127.0.0.1 localhost\r\nkeel:/etc$ "
    );
    let out = type_in(&mut c, &mut fake, "nope\r");
    assert_eq!(
        out,
        "nope\r\nnope: command not found (try 'help')\r\nkeel:/etc$ "
    );
}

#[test]
fn arrow_edit_history_and_interrupt() {
    let mut fake = Fake::new();
    let mut c = Console::new();
    let out = type_in(&mut c, &mut fake, "pd\x1b[Dw\r");
    assert!(out.ends_with("\r\n/\r\nkeel:/$ "), "{out:?}");
    let out = type_in(&mut c, &mut fake, "\x1b[A\r");
    assert!(
        out.ends_with("\r\n/\r\nkeel:/$ "),
        "history recalls pwd: {out:?}"
    );
    let out = type_in(&mut c, &mut fake, "reboot\x03");
    assert_eq!(out, "reboot^C\r\nkeel:/$ ");
    assert!(fake.power.is_empty(), "an interrupted line does not run");
}

#[test]
fn exit_and_ctrl_d_close_and_later_input_is_ignored() {
    let mut fake = Fake::new();
    let mut c = Console::new();
    type_in(&mut c, &mut fake, "exit\rreboot\r");
    assert!(c.is_closed());
    assert!(fake.power.is_empty());
    let mut c = Console::new();
    type_in(&mut c, &mut fake, "\x04");
    assert!(c.is_closed());
}
