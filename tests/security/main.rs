//! Cache poisoning, deception and denial-of-service attacks, played over
//! 127.0.0.1 against `cachet-proxy` and against an axum app with the Tower
//! layers, both in front of an origin that reads requests the way common
//! frameworks do ([`origin`]). Each test asserts what the victim receives.

mod attacks;
mod client;
mod connections;
mod origin;
mod properties;
