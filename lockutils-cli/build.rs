//! Links the unwinder statically into the `lockutils` binary on GNU/Linux
//! when the C compiler has it (`libgcc_eh.a`), so the command does not load
//! `libgcc_s.so`: loading it costs every run a library mapping and its
//! constructor's CPU probe (`cpuid`, which traps in a virtual machine),
//! about a tenth of a `lockutils hold`'s CPU time there. Everything else
//! stays as it is: a position-independent executable, full RELRO, the
//! dynamic C library.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=CC");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    // Only a native build: `cc` here is the host's compiler, whose archive
    // would not fit another target.
    let native = std::env::var("TARGET").ok() == std::env::var("HOST").ok();
    if target_os != "linux" || target_env != "gnu" || !native {
        return;
    }
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let Ok(out) = Command::new(&cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
    else {
        return;
    };
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    // Without the archive, `cc` echoes the bare name back: keep the default.
    if !out.status.success() || !Path::new(&path).is_absolute() || !Path::new(&path).is_file() {
        return;
    }
    let dir = Path::new(&path)
        .parent()
        .expect("an absolute file path has a parent");
    println!("cargo:rustc-link-search=native={}", dir.display());
    // The whole archive, so that its `_Unwind_*` definitions are there
    // before the standard library's `-lgcc_s` is reached; `--as-needed`
    // then leaves `libgcc_s.so` out.
    println!("cargo:rustc-link-lib=static:+whole-archive=gcc_eh");
}
