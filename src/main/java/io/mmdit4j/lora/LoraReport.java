package io.mmdit4j.lora;

import java.util.List;
import java.util.Locale;

/**
 * What applying a LoRA did: the LoRA modules that found their Linears ({@code matchedModules}, as the file names them),
 * the model's Linears whose weights were merged ({@code targets}, diffusers names) and the file's keys that target
 * nothing in this model ({@code unmatchedKeys}: other models' layers, text-encoder parts, unsupported kinds).
 */
public record LoraReport(String file, String model, double scale, List<String> matchedModules, List<String> targets,
                         List<String> unmatchedKeys) {

    public LoraReport {
        matchedModules = List.copyOf(matchedModules);
        targets = List.copyOf(targets);
        unmatchedKeys = List.copyOf(unmatchedKeys);
    }

    /** One line: {@code <file> at scale s: N LoRA modules merged into M Linears of <model>[, K keys unmatched]}. */
    public String summary() {
        String s = String.format(Locale.ROOT, "%s at scale %s: %d LoRA modules merged into %d Linears of the %s", file, num(scale),
                matchedModules.size(), targets.size(), model);
        return unmatchedKeys.isEmpty() ? s : s + ", " + unmatchedKeys.size() + " key(s) unmatched";
    }

    static String num(double v) {
        return new java.math.BigDecimal(Double.toString(v)).stripTrailingZeros().toPlainString();
    }
}
