//! Why a sensor did not come up: the kernel lacks something (unsupported) or it should have
//! worked and did not (failed). Operators act differently on the two.

/// A sensor load/attach error, classified.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// This kernel cannot run the sensor; `reason` names what is missing.
    #[error("{sensor}: unsupported on this kernel: {reason}")]
    Unsupported {
        sensor: &'static str,
        reason: String,
    },
    /// The kernel has what the sensor needs, yet loading or attaching failed.
    #[error("{sensor}: {stage} failed")]
    Failed {
        sensor: &'static str,
        stage: &'static str,
        #[source]
        source: libbpf_rs::Error,
    },
}
