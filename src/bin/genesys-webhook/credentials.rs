//! The OAuth client credentials and region that `setup` and `inbound` take.

use std::path::PathBuf;

use genesys_webhook::cloud::{GenesysCloud, Region};

use crate::output::Failure;
use crate::secret::{one_secret, Hidden};

#[derive(Debug, clap::Args)]
pub(crate) struct Credentials {
    /// OAuth client id (client credentials grant).
    #[arg(long, env = "GENESYS_CLIENT_ID")]
    client_id: Option<String>,
    /// OAuth client secret. Prefer the variable or --client-secret-file: a value typed
    /// here shows in `ps` and in shell history.
    #[arg(long, env = "GENESYS_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<Hidden>,
    /// Read the OAuth client secret from this file.
    #[arg(long, value_name = "PATH")]
    client_secret_file: Option<PathBuf>,
    /// Region name (eu-west-1) or domain (mypurecloud.ie).
    #[arg(long, env = "GENESYS_REGION")]
    region: Option<String>,
    /// Platform API base URL, overriding the region's.
    #[arg(long, env = "GENESYS_API_BASE")]
    api_base: Option<String>,
    /// Login base URL, overriding the region's (or the one derived from --api-base).
    #[arg(long, env = "GENESYS_LOGIN_BASE")]
    login_base: Option<String>,
}

impl Credentials {
    /// A client, or a usage error naming everything that is missing.
    pub(crate) fn client(&self) -> Result<GenesysCloud, Failure> {
        let client_id = self.client_id.as_deref().filter(|id| !id.trim().is_empty());
        let client_secret = one_secret(
            self.client_secret.as_ref(),
            self.client_secret_file.as_deref(),
        )?;
        let mut missing = Vec::new();
        if client_id.is_none() {
            missing.push("the OAuth client id (--client-id or GENESYS_CLIENT_ID)");
        }
        if client_secret.is_none() {
            missing.push("the OAuth client secret (GENESYS_CLIENT_SECRET or --client-secret-file)");
        }
        if self.region.is_none() && self.api_base.is_none() {
            missing.push("the region (--region or GENESYS_REGION, e.g. eu-west-1)");
        }
        if !missing.is_empty() {
            return Err(Failure::io(format!("missing {}", missing.join("; "))));
        }
        let (Some(client_id), Some(client_secret)) = (client_id, client_secret) else {
            return Err(Failure::io("missing OAuth client credentials"));
        };
        let mut builder = GenesysCloud::builder().client_credentials(client_id, client_secret);
        if let Some(region) = &self.region {
            let region: Region = region.parse().map_err(|e| Failure::io(format!("{e}")))?;
            builder = builder.region(region);
        }
        if let Some(base) = &self.api_base {
            builder = builder.api_base(base);
        }
        if let Some(base) = &self.login_base {
            builder = builder.login_base(base);
        }
        builder.build().map_err(|e| Failure::io(e.to_string()))
    }
}
