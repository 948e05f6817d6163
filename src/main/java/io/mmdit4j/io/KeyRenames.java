package io.mmdit4j.io;

/**
 * The name tables of key maps, read either way: rename rows {@code {original prefix, diffusers prefix}} and fused rows
 * {@code {original prefix, diffusers part prefix...}} (a fused projection and the projections its rows hold, in row
 * order). The forward direction loads original checkpoints; the inverse names the tensors of the original layout.
 */
public final class KeyRenames {
    private KeyRenames() {}

    /**
     * {@code k} with the prefix of the first matching row replaced: original to diffusers, or diffusers to original when
     * {@code inverse}. Null when no row matches.
     */
    public static String rename(String k, String[][] table, boolean inverse) {
        for (String[] r : table) {
            String from = inverse ? r[1] : r[0], to = inverse ? r[0] : r[1];
            if (k.startsWith(from)) return to + k.substring(from.length());
        }
        return null;
    }

    /** The original (fused) name of a diffusers name that starts with one of a fused row's parts; null when none does. */
    public static String fusedName(String k, String[][] fused) {
        for (String[] f : fused) {
            for (int j = 1; j < f.length; j++) {
                if (k.startsWith(f[j])) return f[0] + k.substring(f[j].length());
            }
        }
        return null;
    }
}
