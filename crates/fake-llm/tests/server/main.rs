//! The fake upstream over real sockets: answers, faults switched at run time, admin.

mod admin;
mod api;
mod common;
mod faults;
mod streams;
