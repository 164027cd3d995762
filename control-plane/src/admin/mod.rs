//! The operator page, `/admin`: a small read-only view of leads and calls for the sales team
//! and the operator, behind the admin token (`ADMIN_API_TOKEN`; off when unset).
//!
//! - `GET /admin`: the page (`static/admin.{html,js,css}`, no framework, no inline code, a
//!   strict Content-Security-Policy, usable on a phone-sized screen);
//! - `POST /admin/login` (form field `token`): sets the session cookie ([`session`]: `HttpOnly`,
//!   `Secure`, `SameSite=Strict`) and sends the browser back to `/admin`; the token is never
//!   accepted in a URL. `POST /admin/logout` ends the session;
//! - `GET /admin/api/leads`, `/admin/api/leads/{id}`, `/admin/api/calls/{id}`: the records of
//!   [`crate::record`] as JSON (the same shapes as `callway-control … --json`), numbers always
//!   masked, a lead's and a call's with their cost when `PRICES_FILE` is set; with the session
//!   cookie, or `Authorization: Bearer <ADMIN_API_TOKEN>` for scripts.

pub mod routes;
pub mod session;

pub use routes::router;
