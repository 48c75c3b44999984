//! The SQS + Lambda process's settings, read from `TONIC_LAMBDA_*` environment variables (the
//! names Tonic's users already have in their deployments), with the limits AWS enforces.

/// The Lambda process's settings, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaSettings {
    /// ARN of the Lambda function's execution role.
    pub role: String,
    /// Function timeout, seconds (1-900).
    pub timeout: u32,
    /// Function memory, MB (128-10240).
    pub memory_size: u32,
    /// The queue's visibility timeout, seconds (at least the function timeout; at most 12 h).
    pub visibility_timeout: u32,
    /// KMS key for the queue's server-side encryption.
    pub kms_master_key: Option<String>,
}

/// One variable's problem: the variable, and what is wrong with what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingProblem {
    /// The environment variable at fault, one of the constants below (e.g. [`TIMEOUT`]).
    pub variable: &'static str,
    /// What is wrong with its value (or its absence) and what would be accepted.
    pub message: String,
}

impl std::fmt::Display for SettingProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.variable, self.message)
    }
}

/// Variable holding the ARN of the Lambda function's execution role (required).
pub const ROLE: &str = "TONIC_LAMBDA_ROLE";
/// Variable holding the function timeout in seconds (1-900, default 30).
pub const TIMEOUT: &str = "TONIC_LAMBDA_TIMEOUT";
/// Variable holding the function's memory in MB (128-10240, default 1024).
pub const MEMORY_SIZE: &str = "TONIC_LAMBDA_MEMORY_SIZE";
/// Variable holding the SQS queue's visibility timeout in seconds (at least the function
/// timeout, at most 43200, default 30).
pub const VISIBILITY: &str = "TONIC_LAMBDA_SQS_VISIBILITY_TIMEOUT";
/// Variable holding the KMS key (id, ARN or `alias/<name>`) that encrypts the SQS queue;
/// required when the queue is to be encrypted.
pub const KMS_MASTER_KEY: &str = "TONIC_LAMBDA_KMS_MASTER_KEY";

/// Every variable, with its default and allowed values, for help texts.
pub const VARIABLES: [(&str, &str); 5] = [
    (
        ROLE,
        "required: the Lambda execution role's ARN, arn:aws:iam::<account>:role/<name>",
    ),
    (TIMEOUT, "seconds, 1-900, default 30"),
    (MEMORY_SIZE, "MB, 128-10240, default 1024"),
    (
        VISIBILITY,
        "seconds, at least the timeout, at most 43200, default 30 (AWS advises 6× the timeout)",
    ),
    (
        KMS_MASTER_KEY,
        "KMS key id, ARN or alias; required when the queue is encrypted",
    ),
];

/// `arn:<partition>:iam::<12 digits>:role/<name>` (partition `aws`, `aws-cn` or `aws-us-gov`).
pub fn is_role_arn(s: &str) -> bool {
    ["arn:aws:iam::", "arn:aws-cn:iam::", "arn:aws-us-gov:iam::"]
        .iter()
        .find_map(|p| s.strip_prefix(p))
        .and_then(|r| r.split_once(":role/"))
        .is_some_and(|(account, name)| {
            account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty()
        })
}

/// A key id (UUID or `mrk-…`), a key or alias ARN, or `alias/<name>`.
pub fn is_kms_key(s: &str) -> bool {
    let uuid = |k: &str| {
        k.len() == 36
            && k.char_indices().all(|(i, c)| {
                if matches!(i, 8 | 13 | 18 | 23) {
                    c == '-'
                } else {
                    c.is_ascii_hexdigit()
                }
            })
    };
    let mrk = |k: &str| {
        k.strip_prefix("mrk-")
            .is_some_and(|h| h.len() == 32 && h.chars().all(|c| c.is_ascii_hexdigit()))
    };
    let alias = |a: &str| {
        a.strip_prefix("alias/")
            .is_some_and(|n| !n.is_empty() && !n.starts_with("aws/"))
    };
    if uuid(s) || mrk(s) || alias(s) {
        return true;
    }
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == "kms"
        && parts[4].len() == 12
        && parts[5]
            .strip_prefix("key/")
            .map_or_else(|| alias(parts[5]), |k| uuid(k) || mrk(k))
}

/// Read and check the settings. `encrypted_queue`: the queue is to be encrypted (then the KMS key
/// is required). Returns the settings and warnings, or every problem at once.
pub fn settings(
    env: impl Fn(&str) -> Option<String>,
    encrypted_queue: bool,
) -> Result<(LambdaSettings, Vec<String>), Vec<SettingProblem>> {
    let mut problems = Vec::new();
    let mut number = |var: &'static str, default: u32, min: u32, max: u32, unit: &str| -> u32 {
        match env(var)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
        {
            None => default,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (min..=max).contains(&n) => n,
                _ => {
                    problems.push(SettingProblem {
                        variable: var,
                        message: format!(
                            "\"{v}\" is not allowed: a whole number of {unit} from {min} to {max} (default {default})"
                        ),
                    });
                    default
                }
            },
        }
    };
    let timeout = number(TIMEOUT, 30, 1, 900, "seconds");
    let memory_size = number(MEMORY_SIZE, 1024, 128, 10_240, "MB");
    let visibility_timeout = number(VISIBILITY, 30, 0, 43_200, "seconds");
    let role = env(ROLE).map(|v| v.trim().to_string()).unwrap_or_default();
    if role.is_empty() {
        problems.push(SettingProblem {
            variable: ROLE,
            message: "not set: the ARN of the Lambda execution role, e.g. \
                      arn:aws:iam::123456789012:role/mirage-lambda (`mirage policy` prints its policies)"
                .into(),
        });
    } else if !is_role_arn(&role) {
        problems.push(SettingProblem {
            variable: ROLE,
            message: format!(
                "\"{role}\" is not a role ARN: write arn:aws:iam::<12-digit account>:role/<name>"
            ),
        });
    }
    if visibility_timeout < timeout
        && !problems
            .iter()
            .any(|p| p.variable == VISIBILITY || p.variable == TIMEOUT)
    {
        problems.push(SettingProblem {
            variable: VISIBILITY,
            message: format!(
                "{visibility_timeout} s is shorter than {TIMEOUT} ({timeout} s): messages would \
                 reappear while a file is still being transformed; set it to at least {timeout} \
                 (AWS advises {})",
                timeout * 6
            ),
        });
    }
    let kms_master_key = env(KMS_MASTER_KEY)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    match &kms_master_key {
        None if encrypted_queue => problems.push(SettingProblem {
            variable: KMS_MASTER_KEY,
            message: "not set, and the queue is to be encrypted: give a customer-managed KMS key \
                      (id, ARN or alias/<name>; S3 cannot use the AWS-managed alias/aws/sqs key)"
                .into(),
        }),
        Some(k) if !is_kms_key(k) => problems.push(SettingProblem {
            variable: KMS_MASTER_KEY,
            message: format!(
                "\"{k}\" is not a KMS key: write a key id, a key ARN or alias/<name> \
                 (not the AWS-managed alias/aws/sqs, which S3 cannot use)"
            ),
        }),
        _ => {}
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut warnings = Vec::new();
    if visibility_timeout < timeout * 6 {
        warnings.push(format!(
            "{VISIBILITY} is {visibility_timeout} s; AWS advises at least 6 × {TIMEOUT} = {} s so \
             retries do not overlap a running invocation",
            timeout * 6
        ));
    }
    Ok((
        LambdaSettings {
            role,
            timeout,
            memory_size,
            visibility_timeout,
            kms_master_key,
        },
        warnings,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/mirage-lambda";

    #[test]
    fn defaults_apply_when_unset() {
        let (s, warnings) = settings(with(&[(ROLE, ROLE_ARN)]), false).unwrap();
        assert_eq!(
            s,
            LambdaSettings {
                role: ROLE_ARN.into(),
                timeout: 30,
                memory_size: 1024,
                visibility_timeout: 30,
                kms_master_key: None
            }
        );
        assert_eq!(warnings.len(), 1, "30 s is below 6 × 30 s: {warnings:?}");
        let (_, warnings) =
            settings(with(&[(ROLE, ROLE_ARN), (VISIBILITY, "180")]), false).unwrap();
        assert!(warnings.is_empty());
    }

    #[test]
    fn every_invalid_value_names_its_variable_and_range() {
        // (variables, queue encrypted, variable reported, what it says)
        type Case<'a> = (&'a [(&'a str, &'a str)], bool, &'a str, &'a str);
        let cases: &[Case] = &[
            (&[], false, ROLE, "not set"),
            (&[(ROLE, "mirage-lambda")], false, ROLE, "not a role ARN"),
            (
                &[(ROLE, "arn:aws:iam::12345:role/x")],
                false,
                ROLE,
                "not a role ARN",
            ),
            (
                &[(ROLE, ROLE_ARN), (TIMEOUT, "0")],
                false,
                TIMEOUT,
                "from 1 to 900",
            ),
            (
                &[(ROLE, ROLE_ARN), (TIMEOUT, "901")],
                false,
                TIMEOUT,
                "from 1 to 900",
            ),
            (
                &[(ROLE, ROLE_ARN), (TIMEOUT, "thirty")],
                false,
                TIMEOUT,
                "from 1 to 900",
            ),
            (
                &[(ROLE, ROLE_ARN), (MEMORY_SIZE, "127")],
                false,
                MEMORY_SIZE,
                "from 128 to 10240",
            ),
            (
                &[(ROLE, ROLE_ARN), (MEMORY_SIZE, "10241")],
                false,
                MEMORY_SIZE,
                "from 128 to 10240",
            ),
            (
                &[(ROLE, ROLE_ARN), (VISIBILITY, "43201")],
                false,
                VISIBILITY,
                "from 0 to 43200",
            ),
            (
                &[(ROLE, ROLE_ARN), (TIMEOUT, "60"), (VISIBILITY, "59")],
                false,
                VISIBILITY,
                "at least 60",
            ),
            (
                &[(ROLE, ROLE_ARN)],
                true,
                KMS_MASTER_KEY,
                "not set, and the queue is to be encrypted",
            ),
            (
                &[(ROLE, ROLE_ARN), (KMS_MASTER_KEY, "alias/aws/sqs")],
                true,
                KMS_MASTER_KEY,
                "not a KMS key",
            ),
            (
                &[(ROLE, ROLE_ARN), (KMS_MASTER_KEY, "my key")],
                false,
                KMS_MASTER_KEY,
                "not a KMS key",
            ),
        ];
        for (vars, encrypted, variable, message) in cases {
            let problems = settings(with(vars), *encrypted).unwrap_err();
            assert!(
                problems
                    .iter()
                    .any(|p| p.variable == *variable && p.message.contains(message)),
                "{vars:?}: {problems:?}"
            );
        }
        // All problems at once.
        let all = settings(with(&[(TIMEOUT, "0"), (MEMORY_SIZE, "1")]), true).unwrap_err();
        assert_eq!(all.len(), 4, "{all:?}");
    }

    #[test]
    fn accepts_the_forms_aws_accepts() {
        for key in [
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "alias/mirage-sqs",
            "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:kms:us-east-1:123456789012:alias/mirage-sqs",
            "mrk-1234abcd12ab34cd56ef1234567890ab",
        ] {
            let (s, _) = settings(
                with(&[
                    (ROLE, ROLE_ARN),
                    (KMS_MASTER_KEY, key),
                    (TIMEOUT, "900"),
                    (MEMORY_SIZE, "10240"),
                    (VISIBILITY, "5400"),
                ]),
                true,
            )
            .unwrap_or_else(|e| panic!("{key}: {e:?}"));
            assert_eq!(s.kms_master_key.as_deref(), Some(key));
        }
    }

    #[test]
    fn role_arns_of_every_partition() {
        for ok in [
            "arn:aws:iam::123456789012:role/r",
            "arn:aws-cn:iam::123456789012:role/r",
            "arn:aws-us-gov:iam::123456789012:role/path/r",
        ] {
            assert!(is_role_arn(ok), "{ok}");
        }
        for bad in [
            "arn:aws:iam::1234:role/r",
            "arn:aws:iam::123456789012:user/u",
            "role/r",
        ] {
            assert!(!is_role_arn(bad), "{bad}");
        }
    }
}
