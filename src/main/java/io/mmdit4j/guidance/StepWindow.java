package io.mmdit4j.guidance;

/**
 * Which denoising steps (0-based, inclusive) a guidance term is active on. Text form: {@code all},
 * {@code N} (one step), {@code N-} (from step N on), {@code N-M}.
 */
public record StepWindow(int first, int last) {
    private static final StepWindow ALL = new StepWindow(0, Integer.MAX_VALUE);

    public StepWindow {
        if (first < 0 || last < first) {
            throw new IllegalArgumentException("step window [" + first + ", " + last + "] is empty or negative");
        }
    }

    public static StepWindow all() {
        return ALL;
    }

    public static StepWindow from(int first) {
        return new StepWindow(first, Integer.MAX_VALUE);
    }

    public boolean contains(int step) {
        return step >= first && step <= last;
    }

    public boolean isAll() {
        return first == 0 && last == Integer.MAX_VALUE;
    }

    public static StepWindow parse(String text) {
        String s = text == null ? "" : text.trim();
        String hint = "step window \"" + text + "\": expected all, N, N- or N-M (0-based step indices, inclusive)";
        if (s.equals("all")) return ALL;
        try {
            int dash = s.indexOf('-');
            if (dash < 0) {
                int n = Integer.parseInt(s);
                return new StepWindow(n, n);
            }
            int first = Integer.parseInt(s.substring(0, dash).trim());
            String rest = s.substring(dash + 1).trim();
            int last = rest.isEmpty() ? Integer.MAX_VALUE : Integer.parseInt(rest);
            return new StepWindow(first, last);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(hint, e);
        }
    }

    @Override
    public String toString() {
        if (isAll()) return "all";
        if (last == Integer.MAX_VALUE) return first + "-";
        return first == last ? Integer.toString(first) : first + "-" + last;
    }
}
