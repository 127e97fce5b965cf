#![doc = include_str!("../README.md")]

pub mod batch;
pub mod rss;
