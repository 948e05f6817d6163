package io.mmdit4j.spark;

import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * One row of the prompt table as text (every column read as a string, absent values null), with its place in the input
 * and its identity: the {@code id} column when given, else a hash of its settings and the model, so a rerun recognises
 * the rows it has made. The identity names the row's image ({@code images/<id>.png}) and record ({@code records/<id>.json}).
 */
public final class InputRow implements Serializable {
    private static final long serialVersionUID = 1L;
    private static final Pattern ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");

    /** 0-based position in the input (files in order, then lines). */
    public final long index;
    /** The row's identity: a valid file name. */
    public final String id;
    /** Whether {@link #id} is the table's own (else a hash). */
    public final boolean explicitId;
    /** Why the table's id cannot be used (the row fails), or null. */
    public final String idError;
    /** Known columns to their text; absent or null values are left out. */
    public final Map<String, String> values;
    /** The raw line Spark could not parse as JSON, or null. */
    public final String corrupt;

    private InputRow(long index, String id, boolean explicitId, String idError, Map<String, String> values, String corrupt) {
        this.index = index;
        this.id = id;
        this.explicitId = explicitId;
        this.idError = idError;
        this.values = values;
        this.corrupt = corrupt;
    }

    /** A row; {@code identityKey} (the model and what else decides the image besides the row) goes into hashed ids. */
    public static InputRow of(long index, Map<String, String> values, String corrupt, String identityKey) {
        Map<String, String> v = new LinkedHashMap<>();
        for (String c : Columns.KNOWN) {
            String s = values.get(c);
            if (s != null) v.put(c, s);
        }
        String given = v.get(Columns.ID);
        String hash = hash(v, corrupt, identityKey);
        if (given == null) return new InputRow(index, hash, false, null, v, corrupt);
        String t = given.trim();
        if (!ID.matcher(t).matches()) {
            return new InputRow(index, hash, false, "'id' " + quote(given) + ": ids are 1 to 128 letters, digits, '.', '_' or '-', starting with a "
                    + "letter or digit (they name the row's files)", v, corrupt);
        }
        return new InputRow(index, t, true, null, v, corrupt);
    }

    /** 16 hex digits of SHA-256 over the row's known columns (in {@link Columns#KNOWN} order), its raw text if corrupt, and the key. */
    static String hash(Map<String, String> v, String corrupt, String identityKey) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            StringBuilder b = new StringBuilder(identityKey).append('\u0000');
            for (String c : Columns.KNOWN) {
                if (c.equals(Columns.ID) || !v.containsKey(c)) continue;
                b.append(c).append('=').append(v.get(c)).append('\u0000');
            }
            if (corrupt != null) b.append(Columns.CORRUPT).append('=').append(corrupt);
            return HexFormat.of().formatHex(md.digest(b.toString().getBytes(StandardCharsets.UTF_8))).substring(0, 16);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    static String quote(String s) {
        String t = s.length() > 80 ? s.substring(0, 77) + "..." : s;
        return "'" + t.replace("\n", "\\n") + "'";
    }

    @Override
    public String toString() {
        return "InputRow[" + index + ", " + id + ", " + values + (corrupt == null ? "" : ", corrupt") + "]";
    }
}
