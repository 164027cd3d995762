//! The sans-IO core: everything the gateway decides, with no socket, clock or runtime in sight.
pub mod auth;
pub mod ws;
