//! Files for `aispend import`: CSV (the export's columns and the seed logs' header) or
//! JSONL (the first byte picks), read row by row into `UsageInput`s.
#![no_main]

use aispend::client::import::{FileFormat, inputs};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let format = if selector & 1 == 0 {
        FileFormat::Csv
    } else {
        FileFormat::Jsonl
    };
    let Ok(rows) = inputs(format, std::io::Cursor::new(body.to_vec()), None) else {
        return;
    };
    let mut last_line = 0;
    for row in rows {
        let line = match row {
            Ok((line, input)) => {
                assert!(input.is_object(), "a usage input must be an object");
                line
            }
            Err((line, reason)) => {
                assert!(!reason.is_empty(), "a rejected row needs a reason");
                line
            }
        };
        // Rows come in file order, so summaries can name their lines.
        assert!(
            line >= last_line || line == 0,
            "line {line} after {last_line}"
        );
        last_line = last_line.max(line);
    }
});
