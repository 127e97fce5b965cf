#![doc = include_str!("../README.md")]

pub mod batch;
pub mod day;
pub mod fetch;
pub mod load;
pub mod rss;
