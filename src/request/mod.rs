//! The request path, each step plain Rust: [`head`] reads the headers,
//! [`auth`] the client's key, [`body`] scans the JSON body for `model`,
//! [`decision`] routes it (through [`crate::route`]) and [`shaping`] fits
//! it to the deployment; [`attempt`] does the same once per attempt of a
//! model group; [`reply`] is every answer the filter gives itself.

pub mod attempt;
pub mod auth;
pub mod body;
pub mod decision;
pub mod head;
pub mod reply;
pub mod shaping;

#[cfg(test)]
mod tests;
