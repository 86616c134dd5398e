//! Typed identifiers, so a project id can never be passed where a token id belongs.

use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered id (UUID v7).
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s.trim()).map(Self)
            }
        }
    };
}

macro_rules! int_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.trim().parse().map(Self)
            }
        }
    };
}

uuid_id!(
    /// A project: the unit of ownership for usage, tokens and budgets.
    ProjectId
);
uuid_id!(
    /// An API token (only its hash is stored).
    ApiTokenId
);
uuid_id!(
    /// A budget.
    BudgetId
);
uuid_id!(
    /// A fired alert.
    AlertId
);
int_id!(
    /// A usage event; integer because events are the high-volume table.
    UsageEventId
);
int_id!(
    /// A price row.
    PriceId
);
uuid_id!(
    /// A provider credential (its secret is stored encrypted).
    CredentialId
);
int_id!(
    /// A provider report (a bucket a provider's API or a person reported).
    ProviderReportId
);
uuid_id!(
    /// A fixed subscription cost.
    SubscriptionId
);
uuid_id!(
    /// A sync run.
    SyncRunId
);
uuid_id!(
    /// A notification channel (a named alert destination).
    ChannelId
);
uuid_id!(
    /// An anomaly watch (which anomalies raise alerts, and where they go).
    AnomalyWatchId
);
