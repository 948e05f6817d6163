package io.mmdit4j.io;

import java.util.List;

/** The fuzz tests' check of a refusal: the message names the file and carries no raw control character. */
public final class FuzzMessages {
    private FuzzMessages() {}

    /** How a mutated case ended. */
    public enum Outcome { PARSED, REFUSED, ESCAPED }

    /**
     * Runs case {@code i} (made from {@code caseSeed}): {@code parse} parses it and returns what it wrongly accepted, or
     * null. A {@link ModelFormatException} is a refusal (its message checked); anything else, or a wrong acceptance,
     * goes to {@code problems}.
     */
    public static Outcome attempt(Object file, int i, long caseSeed, java.util.function.Supplier<String> parse, List<String> problems) {
        try {
            String wrong = parse.get();
            if (wrong == null) return Outcome.PARSED;
            problems.add("case " + i + " (seed " + caseSeed + "): accepted " + wrong);
            return Outcome.ESCAPED;
        } catch (ModelFormatException e) {
            check(file, i, e, problems);
            return Outcome.REFUSED;
        } catch (Throwable e) {
            problems.add("case " + i + " (seed " + caseSeed + "): " + e);
            return Outcome.ESCAPED;
        }
    }

    /** Adds to {@code problems} what is wrong with the message of case {@code i}'s refusal of {@code file}. */
    public static void check(Object file, int i, ModelFormatException e, List<String> problems) {
        if (!e.getMessage().startsWith(file + ": ")) problems.add("case " + i + ": message does not name the file: " + e.getMessage());
        if (e.getMessage().indexOf('\0') >= 0 || e.getMessage().indexOf('\u001b') >= 0) problems.add("case " + i + ": raw control character in " + e.getMessage());
    }
}
