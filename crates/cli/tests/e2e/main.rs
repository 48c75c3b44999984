//! End-to-end tests of the `mirage` binary against real PostgreSQL clusters started by the
//! harness. One test binary (see DESIGN.md: tests that link once).

mod agreement;
mod check;
mod demo;
mod failures;
mod generators;
mod lambda;
mod output;
mod postgres;
mod redshift;
mod scan;
mod util;
