#![doc = include_str!("../README.md")]

pub mod batch;
pub mod load;
pub mod rss;
