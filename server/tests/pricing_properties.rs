//! Properties of the cost function that must hold for every rate card and every
//! event: a cost is never negative, splitting a request (below the long-context
//! threshold) splits its cost exactly, more tokens of any class (or more of any other
//! billed unit) never cost less, and a unit without a rate is never priced as text.

use aispend::domain::price::rates::{LongContext, RateCard, RateSet, TokenClass};
use aispend::domain::tokens::{ServiceTier, TokenCounts};
use proptest::prelude::*;
use rust_decimal::Decimal;

/// A rate between 0 and 100 USD per million with up to 4 decimals.
fn rate() -> impl Strategy<Value = Decimal> {
    (0u32..1_000_000).prop_map(|n| Decimal::new(i64::from(n), 4))
}

/// A per-unit rate (an image, a search, a request) between 0 and 1 USD.
fn unit_rate() -> impl Strategy<Value = Decimal> {
    (0u32..1_000_000).prop_map(|n| Decimal::new(i64::from(n), 6))
}

fn rate_set() -> impl Strategy<Value = RateSet> {
    let text = (
        rate(),
        rate(),
        proptest::option::of(rate()),
        proptest::option::of(rate()),
        proptest::option::of(rate()),
        proptest::option::of(rate()),
    );
    let units = (
        proptest::option::of(rate()),
        proptest::option::of(rate()),
        proptest::option::of(rate()),
        proptest::option::of(rate()),
        proptest::option::of(unit_rate()),
        proptest::option::of(unit_rate()),
        proptest::option::of(unit_rate()),
        proptest::option::of(unit_rate()),
    );
    (text, units).prop_map(
        |(
            (input, output, cache_read, cache_write, cache_write_1h, reasoning),
            (
                audio_input,
                audio_output,
                image_input,
                image_output,
                image,
                web_search,
                video_second,
                request,
            ),
        )| RateSet {
            input: Some(input),
            output: Some(output),
            cache_read,
            cache_write,
            cache_write_1h,
            reasoning,
            audio_input,
            audio_output,
            image_input,
            image_output,
            image,
            web_search,
            video_second,
            request,
        },
    )
}

fn scaled(set: &RateSet, factor: Decimal) -> RateSet {
    let mut out = RateSet::default();
    for class in TokenClass::ALL {
        out.set(class, set.explicit(class).map(|r| r * factor));
    }
    out
}

/// The same card with no rate for `class` anywhere.
fn without(card: &RateCard, class: TokenClass) -> RateCard {
    let mut card = card.clone();
    card.standard.set(class, None);
    for set in [&mut card.batch, &mut card.priority, &mut card.flex]
        .into_iter()
        .flatten()
    {
        set.set(class, None);
    }
    if let Some(lc) = card.long_context.as_mut() {
        lc.rates.set(class, None);
    }
    card
}

/// Rate cards shaped like every real price list: batch at most half of standard,
/// priority at least standard, long-context rates at least the dearer of the two (so
/// crossing the threshold never makes a request cheaper).
fn card() -> impl Strategy<Value = RateCard> {
    card_with(proptest::option::of((1_000i64..200_000, rate(), rate())))
}

/// Like [`card`], always with a long-context threshold and rates.
fn long_context_card() -> impl Strategy<Value = RateCard> {
    card_with((1_000i64..200_000, rate(), rate()).prop_map(Some))
}

/// A card whose long-context part (threshold, extra input rate, extra output rate)
/// comes from `lc`.
fn card_with(
    lc: impl Strategy<Value = Option<(i64, Decimal, Decimal)>>,
) -> impl Strategy<Value = RateCard> {
    (
        rate_set(),
        proptest::option::of(1u32..=50),
        proptest::option::of(100u32..=200),
        lc,
    )
        .prop_map(|(standard, batch_pct, priority_pct, lc)| {
            let batch = batch_pct.map(|p| scaled(&standard, Decimal::new(i64::from(p), 2)));
            let priority = priority_pct.map(|p| scaled(&standard, Decimal::new(i64::from(p), 2)));
            let ceiling = priority.clone().unwrap_or_else(|| standard.clone());
            let long_context = lc.map(|(threshold, extra_in, extra_out)| {
                let mut rates = scaled(&ceiling, Decimal::ONE);
                rates.input = ceiling.input.map(|r| r + extra_in);
                rates.output = ceiling.output.map(|r| r + extra_out);
                rates.reasoning = Some(ceiling.resolved(TokenClass::Reasoning));
                rates.cache_read = Some(ceiling.resolved(TokenClass::CacheRead) + extra_in);
                rates.cache_write = Some(ceiling.resolved(TokenClass::CacheWrite) + extra_in);
                rates.cache_write_1h = Some(ceiling.resolved(TokenClass::CacheWrite1h) + extra_in);
                LongContext { threshold, rates }
            });
            RateCard {
                standard,
                batch,
                priority,
                flex: None,
                long_context,
                ..RateCard::default()
            }
        })
}

/// Text tokens only (every card prices them).
fn tokens(max: i64) -> impl Strategy<Value = TokenCounts> {
    (0..max, 0..max, 0..max, 0..max, 0..max, 0..=100i64).prop_map(
        |(input, output, cache_read, cache_write, cache_write_1h, pct)| TokenCounts {
            input,
            output,
            cache_read,
            cache_write,
            cache_write_1h,
            reasoning: output * pct / 100,
            ..TokenCounts::default()
        },
    )
}

/// Text tokens and every other unit.
fn usage(max: i64) -> impl Strategy<Value = TokenCounts> {
    (
        tokens(max),
        (
            0..max,
            0..max,
            0..max,
            0..max,
            0..100i64,
            0..100i64,
            0..100i64,
        ),
    )
        .prop_map(
            |(
                t,
                (audio_input, audio_output, image_input, image_output, images, searches, video),
            )| {
                TokenCounts {
                    audio_input,
                    audio_output,
                    image_input,
                    image_output,
                    images,
                    web_searches: searches,
                    video_seconds: video,
                    ..t
                }
            },
        )
}

/// The classes that are never billed at another class's rate.
const OWN_RATE_ONLY: [TokenClass; 6] = [
    TokenClass::AudioInput,
    TokenClass::AudioOutput,
    TokenClass::ImageOutput,
    TokenClass::Image,
    TokenClass::WebSearch,
    TokenClass::VideoSecond,
];

fn tier() -> impl Strategy<Value = ServiceTier> {
    prop_oneof![
        Just(ServiceTier::Standard),
        Just(ServiceTier::Batch),
        Just(ServiceTier::Priority),
        Just(ServiceTier::Flex)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_cost_is_never_negative(card in card(), t in usage(2_000_000_000), requests in 1i64..1000, tier in tier()) {
        let cost = card.cost(&t, requests, tier, None).expect("fits");
        prop_assert!(cost.nanos() >= 0);
    }

    #[test]
    fn splitting_a_request_below_the_threshold_splits_its_cost_exactly(
        mut card in card(), a in usage(50_000), b in usage(50_000), tier in tier()
    ) {
        // Two requests of one request each: the whole is one event of two requests
        // (so per-request fees add up too).
        let whole = a.saturating_add(&b);
        // The property is about requests below the threshold: keep the long-context
        // rates on the card, but move the threshold above this request.
        if let Some(lc) = card.long_context.as_mut() {
            lc.threshold = lc.threshold.max(whole.prompt_total() + 1);
        }
        prop_assert!(!card.is_long_context(&whole, 2));
        let sum = card.exact_cost(&a, 1, tier, None) + card.exact_cost(&b, 1, tier, None);
        prop_assert_eq!(card.exact_cost(&whole, 2, tier, None), sum);
        // Rounded to nano-dollars, the parts may each round by half a nano-dollar.
        let rounded = card.cost(&whole, 2, tier, None).unwrap().nanos();
        let parts = card.cost(&a, 1, tier, None).unwrap().nanos() + card.cost(&b, 1, tier, None).unwrap().nanos();
        prop_assert!((rounded - parts).abs() <= 1);
    }

    #[test]
    fn more_tokens_of_any_class_never_cost_less(
        card in card(), t in usage(100_000), extra in 1i64..300_000, class in 0usize..14, requests in 1i64..4, tier in tier()
    ) {
        let mut more = t;
        let mut more_requests = requests;
        match class {
            0 => more.input += extra,
            1 => more.output += extra,
            2 => more.cache_read += extra,
            3 => more.cache_write += extra,
            4 => more.cache_write_1h += extra,
            // Reasoning is part of output: more reasoning means more output.
            5 => { more.reasoning += extra; more.output += extra; }
            6 => more.audio_input += extra,
            7 => more.audio_output += extra,
            8 => more.image_input += extra,
            9 => more.image_output += extra,
            10 => more.images += extra,
            11 => more.web_searches += extra,
            12 => more.video_seconds += extra,
            // More requests with the same tokens: never cheaper unless long context
            // stops applying (fewer tokens per request), so compare below it.
            _ => {
                if card.is_long_context(&t, requests) { return Ok(()); }
                more_requests += extra;
            }
        }
        prop_assert!(card.exact_cost(&more, more_requests, tier, None) >= card.exact_cost(&t, requests, tier, None));
    }

    #[test]
    fn a_unit_without_a_rate_is_never_priced_as_text(
        card in card(), t in usage(100_000), which in 0usize..6, extra in 1i64..1_000, requests in 1i64..4, tier in tier()
    ) {
        let class = OWN_RATE_ONLY[which];
        let card = without(&card, class);
        let mut t = t;
        match class {
            TokenClass::AudioInput => t.audio_input += extra,
            TokenClass::AudioOutput => t.audio_output += extra,
            TokenClass::ImageOutput => t.image_output += extra,
            TokenClass::Image => t.images += extra,
            TokenClass::WebSearch => t.web_searches += extra,
            _ => t.video_seconds += extra,
        }
        // Some unit lacks a rate (this one, or another the card also lacks).
        let missing = card.missing_rate(&t, requests, tier, None);
        prop_assert!(missing.is_some());
        prop_assert!(OWN_RATE_ONLY.contains(&missing.unwrap_or(TokenClass::Input)));
        // Text alone is always priced.
        let text = TokenCounts { input: t.input, output: t.output, reasoning: t.reasoning,
            cache_read: t.cache_read, cache_write: t.cache_write, cache_write_1h: t.cache_write_1h,
            image_input: t.image_input, ..TokenCounts::default() };
        prop_assert_eq!(card.missing_rate(&text, requests, tier, None), None);
    }

    #[test]
    fn crossing_the_long_context_threshold_never_lowers_the_cost(
        card in long_context_card(), t in tokens(50_000), requests in 1i64..4, tier in tier()
    ) {
        // Every case has a threshold (no early return for cards without one).
        let lc = card.long_context.clone().expect("a long-context card");
        // Put the prompt exactly at the threshold, then one token over it.
        let mut at = t;
        at.input = 0;
        at.cache_read = 0;
        at.cache_write = 0;
        at.cache_write_1h = 0;
        at.input = lc.threshold * requests;
        let mut over = at;
        over.input += 1;
        prop_assert!(!card.is_long_context(&at, requests));
        prop_assert!(card.is_long_context(&over, requests));
        prop_assert!(card.exact_cost(&over, requests, tier, None) >= card.exact_cost(&at, requests, tier, None));
    }
}
