//! Links `svcnet-echoserver` as a position-dependent executable.
//!
//! The agent starts that program once per echoserver container, so its
//! start-up is on the path of every such pod. As a PIE its ~8,000 relative
//! relocations are applied by the dynamic loader at each start (and dirty
//! the pages they land on); linked at a fixed address, the linker resolves
//! them once and about a hundred are left. The shared libraries are still
//! loaded where the kernel puts them.
fn main() {
    println!("cargo::rustc-link-arg-bin=svcnet-echoserver=-no-pie");
    println!("cargo::rerun-if-changed=build.rs");
}
