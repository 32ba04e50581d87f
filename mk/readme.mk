# The README's C quick start must compile and run as written.
README_C := $(BUILD)/readme/quickstart

$(README_C): README.md $(LIBLINK)
	@mkdir -p $(dir $@)
	awk '/^## C quick start/{s=1} s&&/^```c$$/{p=1;next} p&&/^```$$/{exit} p' README.md > $@.c
	$(CC) $(CFLAGS_COMMON) $@.c -o $@ $(LDFLAGS_LIB)

test-readme-c: $(README_C)
	timeout 30 $(README_C)

TEST_TARGETS += test-readme-c

# ... and so must its connection-control example.
README_CTL := $(BUILD)/readme/control

$(README_CTL): README.md $(LIBLINK)
	@mkdir -p $(dir $@)
	awk '/^### Facing untrusted peers/{s=1} s&&/^```c$$/{p=1;next} p&&/^```$$/{exit} p' README.md > $@.c
	$(CC) $(CFLAGS_COMMON) $@.c -o $@ $(LDFLAGS_LIB)

test-readme-c-control: $(README_CTL)
	timeout 30 $(README_CTL)

TEST_TARGETS += test-readme-c-control

# ... and its TLS settings example.
README_TLS := $(BUILD)/readme/tls_settings

$(README_TLS): README.md $(LIBLINK)
	@mkdir -p $(dir $@)
	awk '/^### TLS settings/{s=1} s&&/^```c$$/{p=1;next} p&&/^```$$/{exit} p' README.md > $@.c
	$(CC) $(CFLAGS_COMMON) $@.c -o $@ $(LDFLAGS_LIB)

test-readme-c-tls: $(README_TLS)
	timeout 30 $(README_TLS)

TEST_TARGETS += test-readme-c-tls
