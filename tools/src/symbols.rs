//! Naming code addresses in backtraces from the kernel image's symbol table.

use std::path::Path;

use object::{Object, ObjectSymbol, SymbolKind};

/// Function symbols of an image, sorted by address.
pub struct Symbols {
    funcs: Vec<(u64, u64, String)>,
}

impl Symbols {
    /// Read the symbol table of the ELF at `path` (empty if unreadable).
    pub fn load(path: &Path) -> Self {
        let mut funcs = Vec::new();
        if let Ok(data) = std::fs::read(path)
            && let Ok(file) = object::File::parse(&*data)
        {
            for sym in file.symbols().filter(|s| s.kind() == SymbolKind::Text) {
                if let Ok(name) = sym.name() {
                    funcs.push((
                        sym.address(),
                        sym.size(),
                        rustc_demangle::demangle(name).to_string(),
                    ));
                }
            }
        }
        funcs.sort_by_key(|f| f.0);
        Self { funcs }
    }

    /// `function+0xoffset` for `addr`, if it falls inside a known function.
    pub fn name(&self, addr: u64) -> Option<String> {
        let i = self.funcs.partition_point(|f| f.0 <= addr).checked_sub(1)?;
        let (start, size, name) = &self.funcs[i];
        // A return address may sit just past the end of a `noreturn` call's function.
        (addr < start + size.max(&1) + 1)
            .then(|| format!("{}+{:#x}", strip_hash(name), addr - start))
    }

    /// Append a symbol name to backtrace lines (`  #3 0x…`); other lines pass through.
    pub fn annotate(&self, line: &str) -> String {
        if let crate::protocol::Line::Frame(_, addr) = crate::protocol::parse(line)
            && let Some(name) = self.name(addr)
        {
            return format!("{line} {name}");
        }
        line.to_string()
    }
}

fn strip_hash(name: &str) -> &str {
    // `path::fn::h0123456789abcdef` -> `path::fn`
    match name.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            head
        }
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_enclosing_function() {
        let s = Symbols {
            funcs: vec![
                (0x1000, 0x100, "a::b::h0123456789abcdef".into()),
                (0x1100, 0x20, "c".into()),
            ],
        };
        assert_eq!(s.name(0x1010).as_deref(), Some("a::b+0x10"));
        assert_eq!(s.name(0x1105).as_deref(), Some("c+0x5"));
        assert_eq!(s.name(0x0fff), None);
        assert_eq!(s.name(0x9000), None);
        assert_eq!(s.annotate("  #0 0x1010"), "  #0 0x1010 a::b+0x10");
        assert_eq!(s.annotate("plain"), "plain");
    }
}
