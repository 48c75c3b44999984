//! AWS credentials for mirage's own S3 requests: the standard AWS chain (environment,
//! `AWS_PROFILE` and the shared files, SSO, web identity, container and instance roles), the one
//! the AWS SDKs and CLI read, handed to `object_store` and kept until shortly before they end.

use aws_credential_types::provider::ProvideCredentials;
use object_store::aws::AwsCredential;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Where the chain looks, for messages.
pub const WHERE_CREDENTIALS_ARE_READ: &str = "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, \
     AWS_PROFILE and ~/.aws/credentials or ~/.aws/config (SSO too), a web identity token \
     (AWS_WEB_IDENTITY_TOKEN_FILE), ECS container credentials, EC2 instance metadata";

/// The default chain, loaded once per provider.
async fn chain() -> aws_credential_types::provider::SharedCredentialsProvider {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    config.credentials_provider().unwrap_or_else(|| {
        aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new("", "", None, None, "none"),
        )
    })
}

/// Credentials from the chain, or why there are none (one line, no secret).
pub async fn resolve() -> Result<aws_credential_types::Credentials, String> {
    chain()
        .await
        .provide_credentials()
        .await
        .map_err(|e| {
            let detail = mirage_core::display::error_chain(&e);
            if detail.contains("no credentials") || detail.contains("not enabled") {
                format!(
                    "no AWS credentials were found; mirage looks in {WHERE_CREDENTIALS_ARE_READ}"
                )
            } else {
                format!(
                    "the AWS credentials could not be read: {}",
                    detail.lines().next().unwrap_or_default()
                )
            }
        })
        .and_then(|c| {
            if c.access_key_id().is_empty() {
                Err(format!(
                    "no AWS credentials were found; mirage looks in {WHERE_CREDENTIALS_ARE_READ}"
                ))
            } else {
                Ok(c)
            }
        })
}

/// `object_store`'s credentials from the standard chain.
#[derive(Debug, Default)]
pub struct ChainCredentials {
    cached: tokio::sync::Mutex<Option<(Arc<AwsCredential>, Option<SystemTime>)>>,
}

#[async_trait::async_trait]
impl object_store::CredentialProvider for ChainCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let mut cached = self.cached.lock().await;
        if let Some((c, expires)) = cached.as_ref()
            && expires.is_none_or(|e| e > SystemTime::now() + Duration::from_secs(300))
        {
            return Ok(c.clone());
        }
        let fresh = resolve().await.map_err(|e| object_store::Error::Generic {
            store: "S3",
            source: e.into(),
        })?;
        let credential = Arc::new(AwsCredential {
            key_id: fresh.access_key_id().to_string(),
            secret_key: fresh.secret_access_key().to_string(),
            token: fresh.session_token().map(str::to_string),
        });
        *cached = Some((credential.clone(), fresh.expiry()));
        Ok(credential)
    }
}
