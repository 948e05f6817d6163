package io.mmdit4j.io;

import java.util.List;

/** The fuzz tests' check of a refusal: the message names the file and carries no raw control character. */
public final class FuzzMessages {
    private FuzzMessages() {}

    /** Adds to {@code problems} what is wrong with the message of case {@code i}'s refusal of {@code file}. */
    public static void check(Object file, int i, ModelFormatException e, List<String> problems) {
        if (!e.getMessage().startsWith(file + ": ")) problems.add("case " + i + ": message does not name the file: " + e.getMessage());
        if (e.getMessage().indexOf('\0') >= 0 || e.getMessage().indexOf('\u001b') >= 0) problems.add("case " + i + ": raw control character in " + e.getMessage());
    }
}
