//! Links `svcnet-echoserver` as a static executable.
//!
//! The agent starts that program once per echoserver container, so its
//! start-up is on the path of every such pod. Linked dynamically, each
//! start has the loader map and relocate the C library, libm and
//! libgcc_s (and, as a PIE, apply ~8,000 relative relocations, dirtying
//! the pages they land on). Static and at a fixed address, it starts
//! without a loader.
//!
//! Cargo cannot set `crt-static` for one binary of a workspace, and rustc
//! asks the linker for the standard library's C libraries as shared ones
//! (`-Bdynamic -lgcc_s ... -lc`). So, for that binary's link only: `-static
//! -no-pie`, and a directory searched first whose `libc.so`, `libm.so`,
//! `libgcc_s.so`, ... are linker scripts naming the static archives (the
//! way glibc's own `libc.so` is a script). Where an archive is missing,
//! the program is linked as before: dynamically, at a fixed address.
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=CC");
    let bin = "svcnet-echoserver";
    println!("cargo::rustc-link-arg-bin={bin}=-no-pie");
    match static_libraries() {
        Some(dir) => {
            println!("cargo::rustc-link-arg-bin={bin}=-static");
            println!("cargo::rustc-link-arg-bin={bin}=-L{}", dir.display());
        }
        None => println!("cargo::warning={bin} is linked dynamically: a static C library or libgcc is missing"),
    }
}

/// Where the C compiler rustc links with finds `name`, if it is there.
fn find(name: &str) -> Option<PathBuf> {
    let out = Command::new("cc").arg(format!("-print-file-name={name}")).output().ok()?;
    // Without the file, cc prints the bare name back.
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    (out.status.success() && path.is_absolute() && path.is_file()).then_some(path)
}

/// A directory of linker scripts that stand for the shared libraries the
/// standard library links (`-l<name>` finds `lib<name>.so` there first).
fn static_libraries() -> Option<PathBuf> {
    // `cc` finds the host's archives: only for a native build.
    let target = std::env::var("TARGET").ok()?;
    if !target.ends_with("-linux-gnu") || std::env::var("HOST").ok()? != target {
        return None;
    }
    let archive = |name: &str| {
        let path = find(name)?.display().to_string();
        // The scripts name it: a compiler upgrade that moves it must
        // write them again.
        println!("cargo::rerun-if-changed={path}");
        Some(path)
    };
    let (libc, libm, gcc, gcc_eh) =
        (archive("libc.a")?, archive("libm.a")?, archive("libgcc.a")?, archive("libgcc_eh.a")?);
    let dir = PathBuf::from(std::env::var_os("OUT_DIR")?).join("static-libs");
    std::fs::create_dir_all(&dir).ok()?;
    let script = |lib: &str, inputs: &[&str]| -> Option<()> {
        std::fs::write(Path::new(&dir).join(format!("lib{lib}.so")), format!("GROUP ( {} )\n", inputs.join(" "))).ok()
    };
    // The unwinder and compiler support routines go with the C library,
    // which uses them too. Since glibc 2.34 libutil, librt, libpthread and
    // libdl are part of libc (their archives are empty); before, they are
    // archives of their own.
    script("c", &[&libc, &gcc_eh, &gcc])?;
    script("gcc_s", &[&gcc_eh, &gcc])?;
    script("m", &[&libm])?;
    for lib in ["util", "rt", "pthread", "dl"] {
        let own = find(&format!("lib{lib}.a")).map(|p| p.display().to_string());
        script(lib, &[own.as_deref().unwrap_or(&libc), &libc])?;
    }
    Some(dir)
}
