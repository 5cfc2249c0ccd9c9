//! Amazon Resource Names, parsed once where an event is parsed: `Arn` keeps the text and where
//! its parts are, so the partition, region, account and the resource's last segment are read
//! without splitting the text again (and an ARN that is not one is refused at the edge, naming
//! its field).

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `arn:<partition>:<service>:<region>:<account>:<resource>`; region and account may be empty
/// (global resources), the others may not.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Arn {
    text: String,
    /// Byte offsets of the service, region, account and resource parts in `text`.
    starts: [usize; 4],
}

/// Whether `id` has the shape of an AWS account id: 12 digits.
pub fn is_account_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `region` has the shape of an AWS region (`us-east-1`, `us-gov-west-1`): two lowercase
/// letters, one or more lowercase words, a number of one or two digits.
pub fn is_aws_region(region: &str) -> bool {
    let mut parts = region.split('-');
    let Some(country) = parts.next() else {
        return false;
    };
    let rest: Vec<&str> = parts.collect();
    let Some((number, words)) = rest.split_last() else {
        return false;
    };
    let lower = |part: &&str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase());
    country.len() == 2
        && lower(&country)
        && !words.is_empty()
        && words.iter().all(lower)
        && (1..=2).contains(&number.len())
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// Why a text is not an ARN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{}` is not an ARN (arn:<partition>:<service>:<region>:<account>:<resource>)", shown(.0))]
pub struct NotAnArn(pub String);

/// At most 200 characters of what was refused: an error names the text, not megabytes of it.
fn shown(text: &str) -> String {
    text.chars().take(200).collect()
}

impl Arn {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Self, NotAnArn> {
        let refuse = || NotAnArn(text.to_owned());
        let rest = text.strip_prefix("arn:").ok_or_else(refuse)?;
        let mut starts = [0; 4];
        let mut at = "arn:".len();
        let mut parts = rest.splitn(5, ':');
        let partition = parts.next().ok_or_else(refuse)?;
        at += partition.len() + 1;
        for start in &mut starts[..3] {
            *start = at;
            at += parts.next().ok_or_else(refuse)?.len() + 1;
        }
        starts[3] = at;
        let resource = parts.next().ok_or_else(refuse)?;
        let arn = Self {
            text: text.to_owned(),
            starts,
        };
        if partition.is_empty() || arn.service().is_empty() || resource.is_empty() {
            return Err(refuse());
        }
        Ok(arn)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `aws`, `aws-cn`, `aws-us-gov` …
    pub fn partition(&self) -> &str {
        &self.text["arn:".len()..self.starts[0] - 1]
    }

    /// `ecs`, `cloudwatch`, `sns` …
    pub fn service(&self) -> &str {
        &self.text[self.starts[0]..self.starts[1] - 1]
    }

    /// The region, unless the resource is global.
    pub fn region(&self) -> Option<&str> {
        Some(&self.text[self.starts[1]..self.starts[2] - 1]).filter(|r| !r.is_empty())
    }

    /// The account, unless the resource has none (an S3 bucket).
    pub fn account(&self) -> Option<&str> {
        Some(&self.text[self.starts[2]..self.starts[3] - 1]).filter(|a| !a.is_empty())
    }

    /// Everything after the account: `cluster/shop`, `task/shop/0123`, `alarm:backlog`.
    pub fn resource(&self) -> &str {
        &self.text[self.starts[3]..]
    }

    /// The resource's last `/`-separated segment: a cluster's, service's or task's name or id
    /// (`cluster/shop` → `shop`, `task/shop/0123` → `0123`, `task-definition/web:12` →
    /// `web:12`); the whole resource when it has no `/`.
    pub fn last_segment(&self) -> &str {
        let resource = self.resource();
        resource.rsplit('/').next().unwrap_or(resource)
    }
}

/// The last `/`-separated segment of `name_or_arn` (a name is its own): for what may be given
/// either way (a cluster named in configuration or by its ARN).
pub fn last_segment(name_or_arn: &str) -> &str {
    name_or_arn.rsplit('/').next().unwrap_or(name_or_arn)
}

impl Deref for Arn {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl AsRef<str> for Arn {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

impl FromStr for Arn {
    type Err = NotAnArn;
    fn from_str(text: &str) -> Result<Self, NotAnArn> {
        Self::parse(text)
    }
}

impl PartialEq<str> for Arn {
    fn eq(&self, other: &str) -> bool {
        self.text == other
    }
}

impl PartialEq<&str> for Arn {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

impl Serialize for Arn {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Arn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Written as a string in the configuration (see its `Deserialize`).
impl schemars::JsonSchema for Arn {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Arn".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "pattern": "^arn:[^:]+:[^:]+:[^:]*:[^:]*:.+$"})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_account_id_is_twelve_digits() {
        assert!(is_account_id("111122223333"));
        for bad in [
            "",
            "11112222333",
            "1111222233334",
            "11112222333a",
            "１１１１２２２２３３３３",
        ] {
            assert!(!is_account_id(bad), "{bad}");
        }
    }

    #[test]
    fn the_parts_of_an_ecs_arn() {
        let arn = Arn::parse("arn:aws-cn:ecs:cn-north-1:111122223333:task/shop/0123").unwrap();
        assert_eq!(
            (
                arn.partition(),
                arn.service(),
                arn.region(),
                arn.account(),
                arn.resource(),
                arn.last_segment()
            ),
            (
                "aws-cn",
                "ecs",
                Some("cn-north-1"),
                Some("111122223333"),
                "task/shop/0123",
                "0123"
            )
        );
        assert_eq!(arn.to_string(), arn.as_str());
    }

    #[test]
    fn an_alarm_and_a_global_resource() {
        let alarm =
            Arn::parse("arn:aws:cloudwatch:eu-west-1:444455556666:alarm:backlog:high").unwrap();
        assert_eq!(alarm.resource(), "alarm:backlog:high");
        assert_eq!(alarm.last_segment(), "alarm:backlog:high");
        let bucket = Arn::parse("arn:aws:s3:::my-bucket/key").unwrap();
        assert_eq!((bucket.region(), bucket.account()), (None, None));
        assert_eq!(bucket.last_segment(), "key");
    }

    #[test]
    fn what_is_not_an_arn() {
        for text in [
            "",
            "arn",
            "arn:",
            "shop",
            "arn:aws:ecs:us-east-1:111122223333",
            "arn:aws:ecs:us-east-1:111122223333:",
            "arn::ecs:us-east-1:1:cluster/shop",
            "arn:aws::us-east-1:1:cluster/shop",
            "urn:aws:ecs:us-east-1:1:cluster/shop",
        ] {
            assert!(Arn::parse(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn an_arn_field_that_is_not_one_names_itself() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Detail {
            #[serde(rename = "clusterArn")]
            cluster_arn: Arn,
        }
        let mut json = serde_json::Deserializer::from_str(r#"{"clusterArn": "shop"}"#);
        let error = serde_path_to_error::deserialize::<_, Detail>(&mut json).unwrap_err();
        assert_eq!(error.path().to_string(), "clusterArn");
        assert!(
            error.to_string().contains("`shop` is not an ARN"),
            "{error}"
        );
    }

    #[test]
    fn the_helper_takes_names_and_arns() {
        assert_eq!(last_segment("shop"), "shop");
        assert_eq!(last_segment("arn:aws:ecs:us-east-1:1:cluster/shop"), "shop");
    }

    proptest! {
        #[test]
        fn parts_put_back_together_are_the_text(
            partition in "[a-z-]{1,10}",
            service in "[a-z0-9-]{1,12}",
            region in "[a-z0-9-]{0,14}",
            account in "[0-9]{0,12}",
            resource in "[ -~]{1,40}",
        ) {
            let text = format!("arn:{partition}:{service}:{region}:{account}:{resource}");
            let arn = Arn::parse(&text).unwrap();
            prop_assert_eq!(arn.partition(), partition.as_str());
            prop_assert_eq!(arn.service(), service.as_str());
            prop_assert_eq!(arn.region().unwrap_or_default(), region.as_str());
            prop_assert_eq!(arn.account().unwrap_or_default(), account.as_str());
            prop_assert_eq!(arn.resource(), resource.as_str());
            prop_assert!(resource.ends_with(arn.last_segment()));
        }

        #[test]
        fn any_text_parses_or_is_refused_without_panicking(text in "\\PC{0,60}") {
            let _ = Arn::parse(&text);
        }
    }
}
