#![doc = include_str!("../README.md")]

pub mod auth;
pub mod client;
pub mod commitment;
pub mod edge;
pub mod intake;
pub mod listing;
pub mod model;
pub mod registry;
pub mod short_string;
pub mod store;
pub mod testkit;
