use super::layer::{BotCredentialsLayer, Credentials};

crate::http::gate::gate_service! {
    /// The middleware made by [`BotCredentialsLayer`].
    BotCredentials, BotCredentialsLayer, Credentials
}
