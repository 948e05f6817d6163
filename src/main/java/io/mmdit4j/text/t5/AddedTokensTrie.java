package io.mmdit4j.text.t5;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A line-by-line port of {@code transformers.tokenization_utils.Trie} (4.38.0): {@link #split} cuts a text at the
 * added tokens it contains, matching greedily from the left with the library's look-ahead for longer tokens.
 * Characters are Unicode code points, as in Python strings. Immutable once built.
 */
final class AddedTokensTrie {
    private static final class Node {
        final Map<Integer, Node> children = new HashMap<>();
        boolean end;  // the "" key of the Python dict
    }

    private final Node root = new Node();

    void add(String word) {
        if (word.isEmpty()) return;
        Node ref = root;
        for (int cp : word.codePoints().toArray()) ref = ref.children.computeIfAbsent(cp, k -> new Node());
        ref.end = true;
    }

    /** {@code Trie.split(text)}. */
    List<String> split(String text) {
        int[] cps = text.codePoints().toArray();
        int n = cps.length;
        // Python's OrderedDict states: start -> trie pointer, in insertion order (starts only ever grow).
        List<int[]> stateStarts = new ArrayList<>();   // int[]{start}
        List<Node> statePtrs = new ArrayList<>();
        List<Integer> offsets = new ArrayList<>();
        offsets.add(0);
        int skip = 0;
        for (int current = 0; current < n; current++) {
            int currentChar = cps[current];
            if (skip != 0 && current < skip) continue;
            Set<Integer> toRemove = null;
            boolean reset = false;
            for (int si = 0; si < stateStarts.size(); si++) {
                int start = stateStarts.get(si)[0];
                Node triePointer = statePtrs.get(si);
                if (triePointer.end) {
                    int end = 0;
                    for (int li = 0; li < stateStarts.size(); li++) {
                        int lookstart = stateStarts.get(li)[0];
                        Node looktriePointer = statePtrs.get(li);
                        int lookaheadIndex;
                        if (lookstart > start) {
                            break;
                        } else if (lookstart < start) {
                            lookaheadIndex = current + 1;
                            end = current + 1;
                        } else {
                            lookaheadIndex = current;
                            end = current;
                        }
                        Integer nextChar = lookaheadIndex < n ? cps[lookaheadIndex] : null;
                        if (looktriePointer.end) {
                            start = lookstart;
                            end = lookaheadIndex;
                            skip = lookaheadIndex;
                        }
                        while (nextChar != null && looktriePointer.children.containsKey(nextChar)) {
                            looktriePointer = looktriePointer.children.get(nextChar);
                            lookaheadIndex++;
                            if (looktriePointer.end) {
                                start = lookstart;
                                end = lookaheadIndex;
                                skip = lookaheadIndex;
                            }
                            if (lookaheadIndex == n) break;
                            nextChar = cps[lookaheadIndex];
                        }
                    }
                    offsets.add(start);
                    offsets.add(end);
                    reset = true;
                    break;
                } else if (triePointer.children.containsKey(currentChar)) {
                    statePtrs.set(si, triePointer.children.get(currentChar));
                } else {
                    if (toRemove == null) toRemove = new HashSet<>();
                    toRemove.add(start);
                }
            }
            if (reset) {
                stateStarts.clear();
                statePtrs.clear();
            } else if (toRemove != null) {
                for (int si = stateStarts.size() - 1; si >= 0; si--) {
                    if (toRemove.contains(stateStarts.get(si)[0])) {
                        stateStarts.remove(si);
                        statePtrs.remove(si);
                    }
                }
            }
            if (current >= skip && root.children.containsKey(currentChar)) {
                putState(stateStarts, statePtrs, current, root.children.get(currentChar));
            }
        }
        for (int si = 0; si < stateStarts.size(); si++) {
            if (statePtrs.get(si).end) {
                offsets.add(stateStarts.get(si)[0]);
                offsets.add(n);
                break;
            }
        }
        return cutText(text, cps, offsets);
    }

    private static void putState(List<int[]> starts, List<Node> ptrs, int start, Node ptr) {
        for (int i = 0; i < starts.size(); i++) {
            if (starts.get(i)[0] == start) {  // dict assignment to an existing key keeps its position
                ptrs.set(i, ptr);
                return;
            }
        }
        starts.add(new int[]{start});
        ptrs.add(ptr);
    }

    /** {@code Trie.cut_text}, with code-point offsets mapped back to UTF-16 indexes. */
    private static List<String> cutText(String text, int[] cps, List<Integer> offsets) {
        int[] charIndex = null;  // code-point index -> UTF-16 index, only needed with supplementary characters
        if (cps.length != text.length()) {
            charIndex = new int[cps.length + 1];
            for (int i = 0, c = 0; i < cps.length; i++) {
                charIndex[i] = c;
                c += Character.charCount(cps[i]);
            }
            charIndex[cps.length] = text.length();
        }
        offsets.add(cps.length);
        List<String> tokens = new ArrayList<>();
        int start = 0;
        for (int end : offsets) {
            if (start > end) continue;  // transformers logs "There was a bug in Trie algorithm" and goes on
            if (start == end) continue;
            tokens.add(charIndex == null ? text.substring(start, end) : text.substring(charIndex[start], charIndex[end]));
            start = end;
        }
        return tokens;
    }
}
