//! Helpers shared by the examples' integration tests.

use std::path::PathBuf;

/// The built example `name`, next to this test binary: target/<profile>/deps/<test>-<hash>
/// -> target/<profile>/examples/<name>. `cargo test -p goexec-examples` builds the examples,
/// `--test <name>` alone does not: a missing binary, or one older than its source, is refused
/// with how to build it.
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("examples/{name}.rs"));
    let modified = |p: &PathBuf| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (build the examples: cargo test -p goexec-examples)",
                    p.display()
                )
            })
    };
    assert!(
        modified(&bin) >= modified(&src),
        "{} is older than {}: build the examples (cargo test -p goexec-examples)",
        bin.display(),
        src.display()
    );
    bin
}
