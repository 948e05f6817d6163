package io.mmdit4j.spark;

import java.util.List;
import java.util.Locale;

/** The columns of a prompt table (JSONL, CSV or Parquet); names are matched without regard to case. */
public final class Columns {
    private Columns() {}

    public static final String ID = "id";
    public static final String PROMPT = "prompt";
    public static final String SEED = "seed";

    /** Every column the job reads, in the order a row's identity hashes them. */
    public static final List<String> KNOWN = List.of(ID, PROMPT, SEED, "size", "width", "height", "steps", "max_sequence_length",
            "guidance_scale", "cfg", "negative_prompt", "mg_preset", "mg_pos", "mg_neg", "mg_w", "mg_layers", "mg_steps", "mg_rows");

    /** The columns every table must have (a row may still leave them empty: that row fails). */
    public static final List<String> REQUIRED = List.of(PROMPT, SEED);

    /** Spark's column for JSON lines it could not parse. */
    public static final String CORRUPT = "_corrupt_record";

    static String normalize(String name) {
        return name.trim().toLowerCase(Locale.ROOT);
    }
}
