//! Where blocking work (a durable redb commit, a signature batch, a stateful import) runs: the
//! seam defined in pp-net ([`pp_net::blocking`]), which pp-net also uses for large frames, so
//! that one pool (tokio's, or inline under a simulation) serves the whole node.

pub use pp_net::blocking::{
    run, Blocking, BlockingJob, CpuPool, CpuPriority, InlineBlocking, TokioBlocking,
};
