#![doc = include_str!("../README.md")]

pub mod auth;
pub mod commitment;
pub mod short_string;
