// SPDX-License-Identifier: GPL-2.0

//! Event queues that user space reads from a file: FAULT ([`fault`]), the page requests of
//! devices attached to HWPTs that take faults, answered by writing to the same file. (vEVENTQ,
//! the events of a vIOMMU, joins here.)

pub(crate) mod fault;
