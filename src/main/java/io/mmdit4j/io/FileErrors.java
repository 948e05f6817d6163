package io.mmdit4j.io;

import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;

/** Pieces of error messages about files: why an I/O call failed, and text read from a file made safe to print. */
public final class FileErrors {
    private FileErrors() {}

    /** Names and values longer than this are cut in messages (a corrupt header can hold a megabyte-long "name"). */
    static final int MAX_QUOTED = 200;

    /**
     * Why {@code e} happened, in words. The JDK's file-system exceptions carry the path as their message and the reason
     * apart, or not at all ({@code AccessDeniedException}'s message is only the path), so "cannot read: " + getMessage()
     * printed the path twice and no reason.
     */
    public static String reason(IOException e) {
        if (e instanceof FileSystemException f) {
            if (f.getReason() != null && !f.getReason().isBlank()) return f.getReason();
            if (e instanceof AccessDeniedException) return "permission denied";
            if (e instanceof NoSuchFileException) return "no such file";
            if (e instanceof NotDirectoryException) return "not a folder";
            return e.getClass().getSimpleName();
        }
        if (e instanceof CharacterCodingException) return "not valid UTF-8 text";
        String m = e.getMessage();
        return m == null || m.isBlank() ? e.getClass().getSimpleName() : m;
    }

    /**
     * {@code s} in single quotes for a message: control and format characters (NUL, escape sequences, bidi overrides)
     * escaped as {@code \0}, {@code \n}, {@code \u001b}, and cut after {@value #MAX_QUOTED} characters, so a name read
     * from a corrupt or hostile file can neither garble a terminal nor flood it.
     */
    public static String quote(String s) {
        if (s == null) return "null";
        StringBuilder b = new StringBuilder(Math.min(s.length(), MAX_QUOTED) + 8).append('\'');
        int n = 0;
        for (int i = 0; i < s.length(); ) {
            if (n++ == MAX_QUOTED) {
                b.append("...' (").append(s.codePointCount(0, s.length())).append(" characters)");
                return b.toString();
            }
            int c = s.codePointAt(i);
            i += Character.charCount(c);
            b.append(printable(c));
        }
        return b.append('\'').toString();
    }

    /** {@code s} with control and format characters escaped, except line breaks and tabs (multi-line text printed as such). */
    public static String printable(String s) {
        StringBuilder b = null;
        for (int i = 0; i < s.length(); ) {
            int c = s.codePointAt(i);
            int next = i + Character.charCount(c);
            boolean keep = c == '\n' || c == '\t' || !needsEscape(c);
            if (!keep && b == null) b = new StringBuilder(s.length() + 16).append(s, 0, i);
            if (b != null) b.append(keep ? new String(Character.toChars(c)) : printable(c));
            i = next;
        }
        return b == null ? s : b.toString();
    }

    private static String printable(int c) {
        if (!needsEscape(c)) return c == '\\' ? "\\\\" : new String(Character.toChars(c));
        return switch (c) {
            case 0 -> "\\0";
            case '\n' -> "\\n";
            case '\r' -> "\\r";
            case '\t' -> "\\t";
            default -> c <= 0xFFFF ? String.format("\\u%04x", c) : String.format("\\U%08x", c);
        };
    }

    private static boolean needsEscape(int c) {
        int type = Character.getType(c);
        return Character.isISOControl(c) || type == Character.FORMAT || type == Character.SURROGATE;
    }
}
