// SPDX-License-Identifier: GPL-2.0

//! iommufd-rs: the iommufd user API (`/dev/iommu`) implemented in Rust.
//!
//! This is the module's skeleton: it registers the misc device `/dev/iommu`
//! under the same name as the C implementation and answers every ioctl with
//! `ENOTTY`, the errno upstream gives for an ioctl it does not know. The
//! object layer, the IOAS and the per-hardware drivers are added in later
//! steps (see Documentation/design.md).
//!
//! Only one iommufd implementation can be loaded at a time: both register the
//! misc device "iommu", so loading this module while `iommufd.ko` is loaded
//! fails with `EEXIST` from the driver core, and the other way round.

use kernel::{
    fs::File,
    miscdevice::{
        MiscDevice,
        MiscDeviceOptions,
        MiscDeviceRegistration, //
    },
    prelude::*, //
};

module! {
    type: IommufdModule,
    name: "iommufd_rs",
    authors: ["iommufd-rs developers"],
    description: "iommufd user API (/dev/iommu) in Rust",
    license: "GPL",
}

/// The module: owns the `/dev/iommu` registration for its whole lifetime.
#[pin_data]
struct IommufdModule {
    #[pin]
    _dev: MiscDeviceRegistration<IommufdCtx>,
}

impl kernel::InPlaceModule for IommufdModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let options = MiscDeviceOptions { name: c"iommu" };

        try_pin_init!(Self {
            _dev <- MiscDeviceRegistration::register(options),
        })
    }
}

/// The state of one open `/dev/iommu` file.
///
/// Each open file is an independent iommufd context; its objects will live
/// here and go away when the file is released.
struct IommufdCtx;

#[vtable]
impl MiscDevice for IommufdCtx {
    type Ptr = KBox<Self>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<KBox<Self>> {
        Ok(KBox::new(IommufdCtx, GFP_KERNEL)?)
    }

    fn ioctl(_ctx: &IommufdCtx, _file: &File, _cmd: u32, _arg: usize) -> Result<isize> {
        // No ioctl is implemented yet; ENOTTY is what upstream answers for an
        // ioctl number it does not handle.
        Err(ENOTTY)
    }
}
