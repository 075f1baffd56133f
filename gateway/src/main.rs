//! `logway`: the gateway and its command line (`logway::cli`).

// jemalloc keeps RSS flat under many short-lived allocations on many
// threads, where glibc's per-thread arenas fragment (measured: see
// docs/performance/).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    logway::cli::main()
}
