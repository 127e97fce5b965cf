#![doc = include_str!("../README.md")]
#![recursion_limit = "256"]

pub mod batch;
pub mod bench_archive;
pub mod bench_day;
pub mod day;
pub mod demo;
pub mod fetch;
pub mod load;
pub mod pipeline;
pub mod rss;
pub mod trace_diff;
pub mod validity;
