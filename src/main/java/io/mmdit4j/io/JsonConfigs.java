package io.mmdit4j.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Reading the JSON config files of model folders, with errors that name the file and the field. */
public final class JsonConfigs {
    private JsonConfigs() {}

    private static final ObjectMapper JSON = new ObjectMapper();

    /** The file's JSON object. */
    public static JsonNode readObject(Path file) {
        return readObject(file, "config");
    }

    /** The file's JSON object; {@code what} names the file's role in errors (e.g. "scheduler config"). */
    public static JsonNode readObject(Path file, String what) {
        JsonNode c;
        try {
            c = JSON.readTree(Files.readString(file));
        } catch (IOException e) {
            throw new ModelFormatException(file + ": cannot read " + what + ": " + FileErrors.reason(e), e);
        }
        if (c == null || !c.isObject()) throw new ModelFormatException(file + ": " + what + " must be a JSON object");
        return c;
    }

    /** An integer field that must be present. */
    public static int requireInt(JsonNode c, Object origin, String name) {
        JsonNode v = c.get(name);
        if (v == null || !v.isInt()) throw new ModelFormatException(origin + ": missing integer \"" + name + "\"");
        return v.asInt();
    }

    /** Rejects a config whose {@code _class_name} names another class (an absent name is accepted). */
    public static void checkClass(JsonNode c, Object origin, String expected) {
        String cls = c.path("_class_name").asText("");
        if (!cls.isEmpty() && !cls.equals(expected)) {
            throw new ModelFormatException(origin + ": _class_name is '" + cls + "', expected " + expected);
        }
    }

    /** An optional integer field (absent or null: {@code dflt}). */
    /**
     * Rejects the keys of a config object that a reader does not take: keys starting with {@code _} and those in
     * {@code read} or {@code ignored} pass; any other must be null or false, else the message names it (as unsupported when
     * it is in {@code unsupported}, as unknown otherwise) followed by {@code hint}.
     */
    public static void rejectUnread(JsonNode c, Object origin, java.util.Set<String> read, java.util.Set<String> ignored,
                                    java.util.Set<String> unsupported, String hint) {
        for (java.util.Iterator<java.util.Map.Entry<String, JsonNode>> it = c.fields(); it.hasNext(); ) {
            java.util.Map.Entry<String, JsonNode> e = it.next();
            String key = e.getKey();
            JsonNode v = e.getValue();
            if (key.startsWith("_") || read.contains(key) || ignored.contains(key)) continue;
            if (v.isNull() || (v.isBoolean() && !v.asBoolean())) continue;
            throw new ModelFormatException(origin + ": " + (unsupported.contains(key) ? "scheduler option " + key + " = " + v + " is not supported"
                    : "unknown scheduler option " + key + " = " + v) + hint);
        }
    }

    public static int intOr(JsonNode c, Object origin, String name, int dflt) {
        JsonNode v = c.get(name);
        if (v == null || v.isNull()) return dflt;
        if (!v.isIntegralNumber() || !v.canConvertToInt()) throw new ModelFormatException(origin + ": " + name + " must be an integer, found " + v);
        return v.asInt();
    }

    /** An optional number field (absent or null: {@code dflt}). */
    public static double doubleOr(JsonNode c, Object origin, String name, double dflt) {
        JsonNode v = c.get(name);
        if (v == null || v.isNull()) return dflt;
        if (!v.isNumber()) throw new ModelFormatException(origin + ": " + name + " must be a number, found " + v);
        return v.asDouble();
    }

    /** An optional boolean field (absent or null: {@code dflt}). */
    public static boolean boolOr(JsonNode c, Object origin, String name, boolean dflt) {
        JsonNode v = c.get(name);
        if (v == null || v.isNull()) return dflt;
        if (!v.isBoolean()) throw new ModelFormatException(origin + ": " + name + " must be true or false, found " + v);
        return v.asBoolean();
    }
}
