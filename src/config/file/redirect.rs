//! The `[redirect]` section of the config file: MQTT 5 server redirection (reason codes 0x9C Use
//! another server and 0x9D Server moved, with a Server Reference).
//!
//! Owns: the schema and checks of `[redirect]`, validated into
//! [`RedirectConfig`](crate::config::RedirectConfig). Must not touch: other sections, or the
//! sending of CONNACK / DISCONNECT (the session and the I/O threads do that).

use serde::Deserialize;

use super::{Field, Reader};
use crate::config::{ConfigError, RedirectConfig};
use crate::protocol::ReasonCode;

/// `[redirect]`
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RedirectSection {
    server_reference: Field<String>,
    kind: Field<String>,
    refuse_connections: Field<bool>,
    on_shutdown: Field<bool>,
}

impl Reader<'_> {
    /// Validates the `[redirect]` section into `out`. Without a `server_reference`,
    /// `refuse_connections` refuses with 0x88 and `on_shutdown` keeps the plain 0x8B.
    pub(super) fn redirect(
        &self,
        r: &RedirectSection,
        out: &mut RedirectConfig,
    ) -> Result<(), ConfigError> {
        if let Some(v) = &r.server_reference {
            let text = v.get_ref().trim();
            // A UTF-8 string property: at most 65535 bytes, no U+0000 [MQTT-1.5.4-2].
            if text.len() > 65535 || text.contains('\0') {
                let message = "must be at most 65535 bytes without U+0000";
                return Err(self.error(v.span(), "redirect.server_reference", message));
            }
            out.server_reference = (!text.is_empty()).then(|| text.into());
        }
        if let Some(v) = &r.kind {
            out.reason = match v.get_ref().as_str() {
                "temporary" => ReasonCode::USE_ANOTHER_SERVER,
                "permanent" => ReasonCode::SERVER_MOVED,
                _ => {
                    let message = "must be \"temporary\" (0x9C) or \"permanent\" (0x9D)";
                    return Err(self.error(v.span(), "redirect.kind", message));
                }
            };
        }
        if let Some(v) = &r.refuse_connections {
            out.refuse_connections = *v.get_ref();
        }
        if let Some(v) = &r.on_shutdown {
            out.on_shutdown = *v.get_ref();
        }
        Ok(())
    }
}
