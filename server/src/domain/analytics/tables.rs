//! Which tables answer a tracked question, and how a range is cut into signed parts
//! among them: whole days and hours from the rollups and sketches, raw events at the
//! edges (see [`tiers`] and [`split`]).

use super::*;
use sea_orm::DbBackend;

/// Which table answers a piece of a tracked query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Table {
    /// `usage_events`.
    Raw,
    /// The events of `usage_events` no rollup or sketch counts yet (their ids are in
    /// `usage_unfolded`, see `rollup::fold`): read beside every rollup or sketch part.
    Unfolded,
    /// `usage_rollup_days` (UTC day, project, provider, model).
    Days,
    /// `usage_rollup_provider_days` (UTC day, project, provider).
    ProviderDays,
    /// `usage_rollup_global_days` (UTC day, provider, model; every project).
    GlobalDays,
    /// `usage_rollup_hours` (UTC hour, project, provider).
    Hours,
    /// `usage_rollup_model_hours` (UTC hour, project, provider, model).
    ModelHours,
    /// `usage_rollup_global_hours` (UTC hour, provider; every project).
    GlobalHours,
    /// `usage_rollup_global_model_hours` (UTC hour, provider, model; every project).
    GlobalModelHours,
    /// `usage_rollup_endpoint_days` (UTC day, project, provider, model, endpoint).
    EndpointDays,
    /// `usage_rollup_endpoint_hours` (UTC hour, project, provider, endpoint).
    EndpointHours,
    /// `usage_rollup_user_days` (UTC day, project, provider, end user).
    UserDays,
    /// `usage_rollup_user_hours` (UTC hour, project, provider, end user).
    UserHours,
    /// `usage_rollup_source_days` (UTC day, project, provider, source).
    SourceDays,
    /// `usage_rollup_source_hours` (UTC hour, project, provider, source).
    SourceHours,
    /// `usage_rollup_endpoint_global_days` (UTC day, provider, model, endpoint; every
    /// project).
    EndpointGlobalDays,
    /// `usage_rollup_user_global_days` (UTC day, provider, end user; every project).
    UserGlobalDays,
    /// `usage_rollup_endpoint_global_weeks` (week, provider, model, endpoint; every
    /// project).
    EndpointGlobalWeeks,
    /// `usage_rollup_endpoint_global_hours` (UTC hour, provider, endpoint; every
    /// project).
    EndpointGlobalHours,
    /// `usage_latency_day_chunks` (latency sketches per UTC day, project, provider,
    /// model).
    LatencyDays,
    /// `usage_latency_week_chunks` (latency sketches per week, project, provider,
    /// model).
    LatencyWeeks,
    /// `usage_latency_hour_chunks` (latency sketches per UTC hour, project, provider,
    /// model).
    LatencyHours,
    /// `usage_latency_global_day_chunks` (latency sketches per UTC day, provider,
    /// model; every project).
    LatencyGlobalDays,
    /// `usage_latency_endpoint_day_chunks` (latency sketches per UTC day, project,
    /// endpoint).
    LatencyEndpointDays,
    /// `usage_latency_endpoint_global_day_chunks` (latency sketches per UTC day and
    /// endpoint; every project).
    LatencyEndpointGlobalDays,
    /// `usage_latency_user_day_chunks` (latency sketches per UTC day, project, end
    /// user).
    LatencyUserDays,
    /// `usage_latency_user_global_day_chunks` (latency sketches per UTC day and end
    /// user; every project).
    LatencyUserGlobalDays,
    /// `usage_latency_source_day_chunks` (latency sketches per UTC day, project,
    /// source).
    LatencySourceDays,
    /// `usage_latency_source_global_day_chunks` (latency sketches per UTC day and
    /// source; every project).
    LatencySourceGlobalDays,
}

impl Table {
    pub(super) fn rollup(self) -> Option<rollup::Rollup> {
        match self {
            Table::Raw | Table::Unfolded => None,
            Table::Days => Some(rollup::DAYS),
            Table::ProviderDays => Some(rollup::PROVIDER_DAYS),
            Table::GlobalDays => Some(rollup::GLOBAL_DAYS),
            Table::Hours => Some(rollup::HOURS),
            Table::ModelHours => Some(rollup::MODEL_HOURS),
            Table::GlobalHours => Some(rollup::GLOBAL_HOURS),
            Table::GlobalModelHours => Some(rollup::GLOBAL_MODEL_HOURS),
            Table::EndpointDays => Some(rollup::ENDPOINT_DAYS),
            Table::EndpointHours => Some(rollup::ENDPOINT_HOURS),
            Table::UserDays => Some(rollup::USER_DAYS),
            Table::UserHours => Some(rollup::USER_HOURS),
            Table::SourceDays => Some(rollup::SOURCE_DAYS),
            Table::SourceHours => Some(rollup::SOURCE_HOURS),
            Table::EndpointGlobalDays => Some(rollup::ENDPOINT_GLOBAL_DAYS),
            Table::UserGlobalDays => Some(rollup::USER_GLOBAL_DAYS),
            Table::EndpointGlobalWeeks => Some(rollup::ENDPOINT_GLOBAL_WEEKS),
            Table::EndpointGlobalHours => Some(rollup::ENDPOINT_GLOBAL_HOURS),
            Table::LatencyDays
            | Table::LatencyWeeks
            | Table::LatencyHours
            | Table::LatencyGlobalDays
            | Table::LatencyEndpointDays
            | Table::LatencyEndpointGlobalDays
            | Table::LatencyUserDays
            | Table::LatencyUserGlobalDays
            | Table::LatencySourceDays
            | Table::LatencySourceGlobalDays => None,
        }
    }

    pub(super) fn sketch(self) -> Option<rollup::Sketch> {
        match self {
            Table::LatencyDays => Some(rollup::LATENCY_DAYS),
            Table::LatencyWeeks => Some(rollup::LATENCY_WEEKS),
            Table::LatencyHours => Some(rollup::LATENCY_HOURS),
            Table::LatencyGlobalDays => Some(rollup::LATENCY_GLOBAL_DAYS),
            Table::LatencyEndpointDays => Some(rollup::LATENCY_ENDPOINT_DAYS),
            Table::LatencyEndpointGlobalDays => Some(rollup::LATENCY_ENDPOINT_GLOBAL_DAYS),
            Table::LatencyUserDays => Some(rollup::LATENCY_USER_DAYS),
            Table::LatencyUserGlobalDays => Some(rollup::LATENCY_USER_GLOBAL_DAYS),
            Table::LatencySourceDays => Some(rollup::LATENCY_SOURCE_DAYS),
            Table::LatencySourceGlobalDays => Some(rollup::LATENCY_SOURCE_GLOBAL_DAYS),
            _ => None,
        }
    }

    /// The event attribute column the table keeps apart, if it is an attribute rollup
    /// or sketch.
    pub(super) fn attr(self) -> Option<&'static str> {
        match (self.rollup(), self.sketch()) {
            (Some(r), _) => r.attr,
            (_, Some(s)) => s.attr,
            _ => None,
        }
    }

    /// Whether the table is the events themselves (all of them, or the unfolded ones).
    pub(super) fn is_raw(self) -> bool {
        matches!(self, Table::Raw | Table::Unfolded)
    }

    /// What a read of the table selects from (`FROM …`): its name, or for the
    /// unfolded events [`unfolded_events`].
    pub(super) fn source(self, backend: DbBackend) -> &'static str {
        match self {
            Table::Unfolded => unfolded_events(backend),
            _ => self.name(),
        }
    }

    pub(super) fn name(self) -> &'static str {
        match (self.rollup(), self.sketch()) {
            (Some(r), _) => r.table,
            (_, Some(s)) => s.table,
            _ => "usage_events",
        }
    }

    pub(super) fn time(self) -> &'static str {
        match (self.rollup(), self.sketch()) {
            (Some(r), _) => r.time,
            (_, Some(s)) => s.time,
            _ => "occurred_at",
        }
    }

    pub(super) fn unit(self) -> i64 {
        match (self.rollup(), self.sketch()) {
            (Some(r), _) => r.unit,
            (_, Some(s)) => s.unit,
            _ => 1,
        }
    }

    /// The sums `measures_at` reads, in its order, each as `(hi, lo)`: from a
    /// rollup's own two columns per measure, or from the events' values split at
    /// 10^9 (`SUM(x / B)`, `SUM(x % B)`), so no `SUM` overflows (see `money::Wide`).
    pub(super) fn measures(self, need: Need) -> String {
        let columns = need.columns().map(|i| rollup::COLUMNS[i]);
        match self {
            Table::Raw | Table::Unfolded => wide_sums(&columns.map(per_event).collect::<Vec<_>>()),
            _ => columns
                .map(|c| format!("SUM({c}_hi), SUM({c})"))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// Whether a question grouped by `dims` with `filter` groups or filters by `d` (a
/// token bound to a project always asks for its project).
pub(super) fn asks(filter: &UsageFilter, dims: &[Dimension], d: Dimension) -> bool {
    dims.contains(&d)
        || match d {
            Dimension::Provider => !filter.providers.is_empty(),
            Dimension::Model => !filter.models.is_empty(),
            Dimension::Project => !filter.projects.is_empty(),
            Dimension::Endpoint => !filter.endpoints.is_empty(),
            Dimension::User => !filter.users.is_empty(),
            Dimension::Source => !filter.sources.is_empty(),
        }
}

/// Whether the filter names an endpoint or end user no stored event can have (`''` or
/// the other bucket's name): it would match rollup and sketch rows, so raw events
/// answer it (with nothing).
pub(super) fn odd_values(filter: &UsageFilter) -> bool {
    filter
        .endpoints
        .iter()
        .chain(&filter.users)
        .any(|v| v.is_empty() || v == rollup::OTHER)
}

/// The tables that can answer a query grouped by `dims` in slots of `slot`
/// microseconds (`None`: no time), coarsest first and raw events last: a daily rollup
/// when the slots are whole days, then an hourly one when they are whole hours. Of
/// each, the smallest that has every dimension asked for or filtered by: without the
/// model unless the model is asked for, and without the project (every project
/// together) when no project is asked for ([`asks`]), per day and per hour alike. A
/// question about one event attribute (endpoint, end user or source, grouped or
/// filtered by) reads that attribute's rollups: by endpoint per day with the model
/// (every project together unless a project is asked for; the edges of a question
/// with the model come from raw events), by end user per day every project together
/// unless a project is asked for. One about two attributes reads raw events.
pub(super) fn tiers(filter: &UsageFilter, dims: &[Dimension], slot: Option<i64>) -> Vec<Table> {
    let mut tiers = Vec::new();
    let fits = |unit: i64| slot.is_none_or(|s| s % unit == 0);
    let asked = |d: Dimension| asks(filter, dims, d);
    let attrs: Vec<Dimension> = [Dimension::Endpoint, Dimension::User, Dimension::Source]
        .into_iter()
        .filter(|&d| asked(d))
        .collect();
    // Below, the dimensions asked for are the provider, model and project, and at
    // most one attribute.
    let (with_model, with_project) = (asked(Dimension::Model), asked(Dimension::Project));
    if attrs.is_empty() {
        if fits(rollup::DAY) {
            tiers.push(if !with_model {
                Table::ProviderDays
            } else if !with_project {
                Table::GlobalDays
            } else {
                Table::Days
            });
        }
        if fits(rollup::HOUR) {
            // With the model asked for: the larger tables that keep it.
            tiers.push(match (with_model, with_project) {
                (true, true) => Table::ModelHours,
                (true, false) => Table::GlobalModelHours,
                (false, true) => Table::Hours,
                (false, false) => Table::GlobalHours,
            });
        }
    } else if let [a] = attrs[..] {
        let odd = odd_values(filter);
        let (days, hours) = match a {
            Dimension::Endpoint if !with_project => {
                (Table::EndpointGlobalDays, Table::EndpointGlobalHours)
            }
            Dimension::Endpoint => (Table::EndpointDays, Table::EndpointHours),
            Dimension::User if !with_project => (Table::UserGlobalDays, Table::UserHours),
            Dimension::User => (Table::UserDays, Table::UserHours),
            _ => (Table::SourceDays, Table::SourceHours),
        };
        if !odd {
            // Across projects, whole weeks by endpoint first.
            if a == Dimension::Endpoint && !with_project && fits(rollup::WEEK) {
                tiers.push(Table::EndpointGlobalWeeks);
            }
            if fits(rollup::DAY) && (!with_model || a == Dimension::Endpoint) {
                tiers.push(days);
            }
            if fits(rollup::HOUR) && !with_model {
                tiers.push(hours);
            }
        }
    }
    tiers.push(Table::Raw);
    tiers
}

/// The events no rollup or sketch counts yet, as a `FROM` clause whose columns are the
/// events' (`id` aside). Driven by the short list of ids, each event found by its
/// primary key: on SQLite `CROSS JOIN` fixes that order, which its planner would
/// otherwise trade for an index range of the events (a month of one end user).
pub(super) fn unfolded_events(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Sqlite => {
            "usage_unfolded CROSS JOIN usage_events ON usage_events.id = usage_unfolded.id"
        }
        _ => "usage_unfolded JOIN usage_events ON usage_events.id = usage_unfolded.id",
    }
}

/// What must be read beside a rollup or sketch part, in the same statement: the
/// unfolded events of its range, with its sign (`None` for raw events, which hold every
/// event already).
pub(super) fn unfolded_twin(part: &Part) -> Option<Part> {
    (!part.table.is_raw()).then_some(Part {
        table: Table::Unfolded,
        ..*part
    })
}

/// One piece of a range read from one table, added or subtracted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Part {
    pub(super) table: Table,
    pub(super) lo: Option<i64>,
    pub(super) hi: Option<i64>,
    /// `1` to add the piece's sums, `-1` to subtract them.
    pub(super) sign: i64,
}

/// Splits `[from, to)` into signed parts whose sums add up to exactly the range's:
/// each table of `tiers` answers whole units, and an edge that falls inside a unit is
/// corrected by the finer tables, whichever way reads less: by adding the part of the
/// unit inside the range, or by taking the whole unit and subtracting the part outside
/// it. A window from 00:37 to 00:37 thirty days later reads 30 whole days, one hour at
/// each end (subtracted at the start, added at the end) and 23 minutes of raw events at
/// each end, instead of 29 days, 23 whole hours and 60 minutes of raw events. Sums are
/// additive, so both ways give the same exact answer.
pub(super) fn split(
    from: Option<i64>,
    to: Option<i64>,
    tiers: &[Table],
    sign: i64,
    parts: &mut Vec<Part>,
) {
    let Some((&table, finer)) = tiers.split_first() else {
        return;
    };
    if table == Table::Raw || finer.is_empty() {
        parts.push(Part {
            table,
            lo: from,
            hi: to,
            sign,
        });
        return;
    }
    let unit = table.unit();
    let down = |x: i64| x.div_euclid(unit) * unit;
    let up = |x: i64| down(x) + if x.rem_euclid(unit) == 0 { 0 } else { unit };
    // Inward first, so that a tie adds rather than subtracts.
    let starts = from.map_or(vec![None], |f| vec![Some(up(f)), Some(down(f))]);
    let ends = to.map_or(vec![None], |t| vec![Some(down(t)), Some(up(t))]);
    // How much of the range the finer tables must read to correct an edge.
    let off = |edge: Option<i64>, at: Option<i64>| edge.zip(at).map_or(0, |(e, a)| (e - a).abs());
    let best = starts
        .iter()
        .flat_map(|&a| ends.iter().map(move |&b| (a, b)))
        .filter(|&(a, b)| a.zip(b).is_none_or(|(a, b)| a < b))
        .min_by_key(|&(a, b)| off(a, from) + off(b, to));
    // Not using this table at all reads the whole range from the finer ones.
    let whole = from.zip(to).map(|(f, t)| t - f);
    match best {
        Some((a, b)) if whole.is_none_or(|w| off(a, from) + off(b, to) < w) => {
            edge(from, a, finer, sign, parts);
            parts.push(Part {
                table,
                lo: a,
                hi: b,
                sign,
            });
            edge(to, b, finer, -sign, parts);
        }
        _ => split(from, to, finer, sign, parts),
    }
}

/// Corrects the unit edge `unit_edge` to the range's edge `at` with the finer tables:
/// adds `[at, unit_edge)` when the unit edge lies after it, subtracts
/// `[unit_edge, at)` when before (for the end of the range, called with the sign
/// flipped: the same rule mirrored).
fn edge(
    at: Option<i64>,
    unit_edge: Option<i64>,
    finer: &[Table],
    sign: i64,
    parts: &mut Vec<Part>,
) {
    if let (Some(at), Some(e)) = (at, unit_edge) {
        if at < e {
            split(Some(at), Some(e), finer, sign, parts);
        } else if e < at {
            split(Some(e), Some(at), finer, -sign, parts);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::provider::Provider;

    const H: i64 = rollup::HOUR;
    const D: i64 = rollup::DAY;

    #[test]
    fn each_question_reads_the_smallest_rollups_that_keep_what_it_asks_for() {
        let none = UsageFilter::default();
        assert_eq!(
            tiers(&none, &[Dimension::Provider], None),
            [Table::ProviderDays, Table::GlobalHours, Table::Raw]
        );
        assert_eq!(
            tiers(&none, &[Dimension::Model], None),
            [Table::GlobalDays, Table::GlobalModelHours, Table::Raw]
        );
        assert_eq!(
            tiers(&none, &[Dimension::Project, Dimension::Model], None),
            [Table::Days, Table::ModelHours, Table::Raw]
        );
        let one_project = UsageFilter {
            projects: vec![ProjectId(uuid::Uuid::nil())],
            ..UsageFilter::default()
        };
        assert_eq!(
            tiers(&one_project, &[Dimension::Model], None),
            [Table::Days, Table::ModelHours, Table::Raw],
            "a project filter needs a table that has the project"
        );
        assert_eq!(
            tiers(&one_project, &[Dimension::Provider], Some(rollup::DAY)),
            [Table::ProviderDays, Table::Hours, Table::Raw]
        );
        let one_model = UsageFilter {
            models: vec!["gpt-4o".into()],
            ..UsageFilter::default()
        };
        assert_eq!(
            tiers(&one_model, &[Dimension::Provider], None),
            [Table::GlobalDays, Table::GlobalModelHours, Table::Raw],
            "a model filter needs a table that has the model"
        );
        assert_eq!(
            tiers(&none, &[Dimension::Provider], Some(rollup::HOUR)),
            [Table::GlobalHours, Table::Raw],
            "hourly slots cannot come from days"
        );
        assert_eq!(
            tiers(&none, &[Dimension::Project], Some(rollup::HOUR)),
            [Table::Hours, Table::Raw],
            "by project in hours: the per-project hourly rollup"
        );
        assert_eq!(
            tiers(&one_project, &[Dimension::Model], Some(rollup::HOUR)),
            [Table::ModelHours, Table::Raw],
            "a project filter needs an hourly table that has the project"
        );
        let by_endpoint = UsageFilter {
            endpoints: vec!["chat".into()],
            ..UsageFilter::default()
        };
        assert_eq!(
            tiers(&by_endpoint, &[Dimension::Model], None),
            [
                Table::EndpointGlobalWeeks,
                Table::EndpointGlobalDays,
                Table::Raw
            ],
            "only the daily endpoint rollups keep the model; no project is asked for"
        );
        assert_eq!(
            tiers(
                &none,
                &[Dimension::Endpoint, Dimension::Model, Dimension::Project],
                None
            ),
            [Table::EndpointDays, Table::Raw]
        );
        let endpoint_in_project = UsageFilter {
            endpoints: vec!["chat".into()],
            projects: vec![ProjectId(uuid::Uuid::nil())],
            ..UsageFilter::default()
        };
        assert_eq!(
            tiers(&endpoint_in_project, &[Dimension::Model], Some(rollup::DAY)),
            [Table::EndpointDays, Table::Raw],
            "a project filter needs a table that has the project"
        );
        assert_eq!(
            tiers(&none, &[Dimension::Endpoint], None),
            [
                Table::EndpointGlobalWeeks,
                Table::EndpointGlobalDays,
                Table::EndpointGlobalHours,
                Table::Raw
            ],
            "by endpoint across projects: every project together, whole weeks first"
        );
        assert_eq!(
            tiers(&none, &[Dimension::Endpoint], Some(rollup::DAY)),
            [
                Table::EndpointGlobalDays,
                Table::EndpointGlobalHours,
                Table::Raw
            ],
            "daily slots cannot come from weeks"
        );
        assert_eq!(
            tiers(&none, &[Dimension::Endpoint, Dimension::Project], None),
            [Table::EndpointDays, Table::EndpointHours, Table::Raw],
            "by endpoint and project: the per-project rollup"
        );
        assert_eq!(
            tiers(&by_endpoint, &[Dimension::Provider], Some(rollup::HOUR)),
            [Table::EndpointGlobalHours, Table::Raw],
            "hourly slots by endpoint across projects: every project together"
        );
        assert_eq!(
            tiers(&by_endpoint, &[Dimension::Provider], None),
            [
                Table::EndpointGlobalWeeks,
                Table::EndpointGlobalDays,
                Table::EndpointGlobalHours,
                Table::Raw
            ]
        );
        assert_eq!(
            tiers(&none, &[Dimension::User], None),
            [Table::UserGlobalDays, Table::UserHours, Table::Raw],
            "by end user alone: every project together"
        );
        assert_eq!(
            tiers(&none, &[Dimension::User, Dimension::Project], None),
            [Table::UserDays, Table::UserHours, Table::Raw],
            "by end user and project: the per-project rollup"
        );
        assert_eq!(
            tiers(&none, &[Dimension::User, Dimension::Provider], None),
            [Table::UserGlobalDays, Table::UserHours, Table::Raw],
            "by end user and provider across projects: every project together"
        );
        let by_user_and_provider = UsageFilter {
            users: vec!["u1".into()],
            providers: vec![Provider::parse("openai").expect("a provider")],
            ..UsageFilter::default()
        };
        assert_eq!(
            tiers(&by_user_and_provider, &[Dimension::Project], None),
            [Table::UserDays, Table::UserHours, Table::Raw],
            "a project asked for needs a table that has the project"
        );
        assert_eq!(
            tiers(&by_user_and_provider, &[], None),
            [Table::UserGlobalDays, Table::UserHours, Table::Raw],
            "a provider filter: every project together keeps the provider"
        );
        assert_eq!(
            tiers(&none, &[Dimension::Source], Some(rollup::HOUR)),
            [Table::SourceHours, Table::Raw]
        );
        assert_eq!(
            tiers(&none, &[Dimension::User, Dimension::Model], None),
            [Table::Raw],
            "no user rollup keeps the model"
        );
        assert_eq!(
            tiers(&by_endpoint, &[Dimension::User], None),
            [Table::Raw],
            "no rollup keeps two attributes"
        );
        let odd = UsageFilter {
            users: vec![rollup::OTHER.into()],
            ..UsageFilter::default()
        };
        assert_eq!(
            tiers(&odd, &[Dimension::Provider], None),
            [Table::Raw],
            "the other bucket's name is not a user"
        );
    }

    fn part(table: Table, lo: Option<i64>, hi: Option<i64>, sign: i64) -> Part {
        Part {
            table,
            lo,
            hi,
            sign,
        }
    }

    const TIERS: [Table; 3] = [Table::Days, Table::Hours, Table::Raw];

    #[test]
    fn an_edge_early_in_a_unit_takes_the_whole_unit_and_subtracts_what_lies_outside() {
        let mut parts = Vec::new();
        let from = 3 * D + 5 * H + 7;
        let to = 10 * D + 2 * H + 11;
        split(Some(from), Some(to), &TIERS, 1, &mut parts);
        assert_eq!(
            parts,
            vec![
                part(Table::Hours, Some(3 * D), Some(3 * D + 5 * H), -1),
                part(Table::Raw, Some(3 * D + 5 * H), Some(from), -1),
                part(Table::Days, Some(3 * D), Some(10 * D), 1),
                part(Table::Hours, Some(10 * D), Some(10 * D + 2 * H), 1),
                part(Table::Raw, Some(10 * D + 2 * H), Some(to), 1),
            ]
        );
    }

    #[test]
    fn thirty_days_from_00_37_read_whole_days_and_23_minutes_of_raw_events_at_each_end() {
        let m = 60_000_000;
        let from = 55 * D + 37 * m;
        let to = from + 30 * D;
        let mut parts = Vec::new();
        split(Some(from), Some(to), &TIERS, 1, &mut parts);
        assert_eq!(
            parts,
            vec![
                part(Table::Hours, Some(55 * D), Some(55 * D + H), -1),
                part(Table::Raw, Some(from), Some(55 * D + H), 1),
                part(Table::Days, Some(55 * D), Some(85 * D), 1),
                part(Table::Hours, Some(85 * D), Some(85 * D + H), 1),
                part(Table::Raw, Some(to), Some(85 * D + H), -1),
            ]
        );
    }

    #[test]
    fn a_range_shorter_than_a_unit_goes_to_the_finer_tables_and_open_ends_stay_open() {
        let mut parts = Vec::new();
        split(Some(D + 7), Some(D + 2 * H), &TIERS, 1, &mut parts);
        assert_eq!(
            parts,
            vec![
                part(Table::Raw, Some(D), Some(D + 7), -1),
                part(Table::Hours, Some(D), Some(D + 2 * H), 1),
            ]
        );
        parts.clear();
        split(
            None,
            Some(2 * D + 1),
            &[Table::Days, Table::Raw],
            1,
            &mut parts,
        );
        assert_eq!(
            parts,
            vec![
                part(Table::Days, None, Some(2 * D), 1),
                part(Table::Raw, Some(2 * D), Some(2 * D + 1), 1),
            ]
        );
        parts.clear();
        split(
            Some(5 * D + 3 * H),
            Some(5 * D + 4 * H),
            &TIERS,
            1,
            &mut parts,
        );
        assert_eq!(
            parts,
            vec![part(
                Table::Hours,
                Some(5 * D + 3 * H),
                Some(5 * D + 4 * H),
                1
            )],
            "an hour in the middle of a day is not a day minus 23 hours"
        );
    }

    /// How many times the parts count the instant `x` (subtracted parts count -1).
    fn coverage(parts: &[Part], x: i64) -> i64 {
        parts
            .iter()
            .filter(|p| p.lo.is_none_or(|lo| lo <= x) && p.hi.is_none_or(|hi| x < hi))
            .map(|p| p.sign)
            .sum()
    }

    proptest::proptest! {
        /// Whatever the range and tables, the signed parts count every instant inside
        /// it exactly once and every instant outside it not at all, and each rollup
        /// part covers whole units of its table. Coverage only changes at a part's
        /// bound, so checking at and just before every bound checks every instant.
        #[test]
        fn signed_parts_count_every_instant_of_the_range_exactly_once(
            from in proptest::option::of(-3 * D..40 * D),
            len in 0..35 * D,
            open_end in proptest::bool::ANY,
            tiers in proptest::sample::select(vec![
                vec![Table::Days, Table::Hours, Table::Raw],
                vec![Table::Days, Table::ModelHours, Table::Raw],
                vec![Table::ProviderDays, Table::Hours, Table::Raw],
                vec![Table::GlobalDays, Table::Raw],
                vec![Table::Hours, Table::Raw],
                vec![Table::Raw],
            ]),
        ) {
            let to = if open_end { None } else { Some(from.unwrap_or(0) + len) };
            let mut parts = Vec::new();
            split(from, to, &tiers, 1, &mut parts);
            let inside = |x: i64| from.is_none_or(|f| f <= x) && to.is_none_or(|t| x < t);
            let mut probes = vec![i64::MIN / 2, i64::MAX / 2];
            for b in parts.iter().flat_map(|p| [p.lo, p.hi]).chain([from, to]).flatten() {
                probes.extend([b - 1, b, b + 1]);
            }
            for x in probes {
                proptest::prop_assert_eq!(coverage(&parts, x), i64::from(inside(x)), "at {}", x);
            }
            for p in parts.iter().filter(|p| p.table != Table::Raw) {
                for b in [p.lo, p.hi].into_iter().flatten() {
                    proptest::prop_assert_eq!(b.rem_euclid(p.table.unit()), 0);
                }
            }
            // Raw events are read for at most one unit of the finest rollup (half a unit
            // at each edge), and never for longer than the range itself.
            if let (Some(f), Some(t), Some(finest)) =
                (from, to, tiers.iter().rev().find(|t| **t != Table::Raw))
            {
                let raw: i64 = parts
                    .iter()
                    .filter(|p| p.table == Table::Raw)
                    .map(|p| p.hi.unwrap_or(t) - p.lo.unwrap_or(f))
                    .sum();
                proptest::prop_assert!(raw <= (t - f).min(finest.unit()), "{} µs of raw events", raw);
            }
        }
    }
}
