package io.mmdit4j.io;

import io.mmdit4j.io.StateDict.Entry;

import java.util.Map;
import java.util.function.UnaryOperator;

/**
 * What the checkpoint key maps (FLUX, SD3, HunyuanVideo, AutoencoderKL) share: the single-file prefix, prefix-rename
 * tables, an output map that refuses two tensors under one name, fused projections split into row views
 * ({@link EntryViews}), and errors that name the checkpoint.
 */
public final class KeyMaps {
    private KeyMaps() {}

    /** The prefix of the transformer's tensors in ComfyUI and Stability AI single files. */
    public static final String DIFFUSION_MODEL_PREFIX = "model.diffusion_model.";

    /** The view that {@code map} makes of {@code sd}, with {@code sd}'s origin at the start of every error message. */
    public static StateDict mapped(StateDict sd, UnaryOperator<StateDict> map) {
        try {
            return map.apply(sd);
        } catch (ModelFormatException e) {
            throw e.getMessage().startsWith(sd.origin()) ? e : new ModelFormatException(sd.origin() + ": " + e.getMessage(), e);
        }
    }

    /**
     * {@code k} renamed by the first rule of {@code table} ({@code {from, to}} prefixes) that applies, or with
     * {@code inverse} by the first whose {@code to} applies, back to {@code from}; null when none applies.
     */
    public static String rename(String k, String[][] table, boolean inverse) {
        for (String[] r : table) {
            String from = inverse ? r[1] : r[0], to = inverse ? r[0] : r[1];
            if (k.startsWith(from)) return to + k.substring(from.length());
        }
        return null;
    }

    /** As {@link #rename(String, String[][], boolean)} forwards, keeping {@code k} when no rule applies. */
    public static String rename(String k, String[][] table) {
        String renamed = rename(k, table, false);
        return renamed == null ? k : renamed;
    }

    /** Adds {@code e} under {@code name}; fails when another tensor of the checkpoint already maps there. */
    public static void put(Map<String, Entry> out, String name, Entry e) {
        if (out.putIfAbsent(name, e) != null) {
            throw new ModelFormatException("checkpoint maps two tensors to '" + name + "' ('" + out.get(name).from() + "' and '" + e.from() + "')");
        }
    }

    /** The equal row parts of a fused projection {@code e} (q, k, v) under {@code names}, in row order (views, no copy). */
    public static void putChunks(Map<String, Entry> out, Entry e, String... names) {
        Entry[] parts = EntryViews.chunks(e, names.length);
        for (int j = 0; j < names.length; j++) put(out, names[j], parts[j]);
    }

    /**
     * FLUX's and HunyuanVideo's single-block {@code linear1}, which fuses q, k and v ({@code dim} rows each) and the MLP
     * input projection (the rest), under {@code q, k, v, mlp} (views, no copy).
     */
    public static void putQkvMlp(Map<String, Entry> out, Entry e, long dim, String q, String k, String v, String mlp) {
        long rows = e.shape()[0];
        if (rows <= 3 * dim) {
            throw new ModelFormatException("tensor '" + e.from() + "' has " + rows + " rows, expected 3 x " + dim + " (q, k, v) plus the MLP width");
        }
        put(out, q, EntryViews.rows(e, 0, dim));
        put(out, k, EntryViews.rows(e, dim, dim));
        put(out, v, EntryViews.rows(e, 2 * dim, dim));
        put(out, mlp, EntryViews.rows(e, 3 * dim, rows - 3 * dim));
    }
}
