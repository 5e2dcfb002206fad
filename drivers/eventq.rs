// SPDX-License-Identifier: GPL-2.0

//! Event queues that user space reads from a file: FAULT ([`fault`]), the page requests of
//! devices attached to HWPTs that take faults, answered by writing to the same file; and
//! vEVENTQ ([`veventq`]), the events of a vIOMMU of one type (a guest's event queue records).

pub(crate) mod fault;
pub(crate) mod veventq;
