/* SPDX-License-Identifier: MIT */
/*
 * guest-code.h - a tiny x86 code emitter and a flat 32-bit protected-mode
 * setup, for test guests that live in a few pages of a KVM memslot.
 *
 * The guests run with paging off and flat 4 GiB segments, so a guest linear
 * address is a guest-physical address (GPA) and every absolute operand below
 * is a GPA.  32-bit protected mode rather than real mode because Hyper-V
 * hypercalls #UD outside protected mode, and because one mode for every
 * test keeps the addressing simple (no segment bases to juggle for MMIO).
 *
 * Only the handful of instructions the tests need; each helper names the
 * instruction it encodes.  Overflowing a code buffer aborts: a test guest
 * that runs off the end of its code would fail in confusing ways.
 */
#ifndef HVN_TESTS_GUEST_CODE_H
#define HVN_TESTS_GUEST_CODE_H

#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GC_SEL_CODE 0x08	/* GDT[1]: flat 32-bit code, DPL 0 */
#define GC_SEL_DATA 0x10	/* GDT[2]: flat 32-bit data, DPL 0 */

struct gcode {
	uint8_t *mem;		/* host view of guest memory at GPA 0 */
	uint32_t pos, end;	/* GPAs: next byte, end of this buffer */
};

static inline void gc_init(struct gcode *c, uint8_t *mem, uint32_t gpa, uint32_t size)
{
	c->mem = mem;
	c->pos = gpa;
	c->end = gpa + size;
}

static inline uint32_t gc_here(const struct gcode *c)
{
	return c->pos;
}

static inline void gc_u8(struct gcode *c, uint8_t v)
{
	if (c->pos >= c->end) {
		fprintf(stderr, "guest-code: buffer overflow at 0x%x\n", c->pos);
		abort();
	}
	c->mem[c->pos++] = v;
}

static inline void gc_u16(struct gcode *c, uint16_t v)
{
	gc_u8(c, v & 0xff);
	gc_u8(c, v >> 8);
}

static inline void gc_u32(struct gcode *c, uint32_t v)
{
	gc_u16(c, v & 0xffff);
	gc_u16(c, v >> 16);
}

/* Registers by their ModRM/opcode number. */
enum { X86_EAX = 0, X86_ECX = 1, X86_EDX = 2, X86_EBX = 3 };

static inline void x86_mov_r32(struct gcode *c, int reg, uint32_t imm)	/* mov r32, imm32 */
{
	gc_u8(c, 0xb8 + reg);
	gc_u32(c, imm);
}

static inline void x86_mov_al(struct gcode *c, uint8_t imm)		/* mov al, imm8 */
{
	gc_u8(c, 0xb0);
	gc_u8(c, imm);
}

static inline void x86_mov_ax(struct gcode *c, uint16_t imm)		/* mov ax, imm16 */
{
	gc_u8(c, 0x66);
	gc_u8(c, 0xb8);
	gc_u16(c, imm);
}

static inline void x86_mov_dx(struct gcode *c, uint16_t port)		/* mov dx, imm16 */
{
	gc_u8(c, 0x66);
	gc_u8(c, 0xba);
	gc_u16(c, port);
}

/* out dx, al / ax / eax: an I/O write of 1, 2 or 4 bytes to port dx. */
static inline void x86_out_dx(struct gcode *c, unsigned int width)
{
	if (width == 2)
		gc_u8(c, 0x66);
	gc_u8(c, width == 1 ? 0xee : 0xef);
}

static inline void x86_out_imm_al(struct gcode *c, uint8_t port)	/* out imm8, al */
{
	gc_u8(c, 0xe6);
	gc_u8(c, port);
}

/* mov [moffs32], al / ax / eax: a 1, 2 or 4 byte write to an absolute GPA. */
static inline void x86_store(struct gcode *c, unsigned int width, uint32_t gpa)
{
	if (width == 2)
		gc_u8(c, 0x66);
	gc_u8(c, width == 1 ? 0xa2 : 0xa3);
	gc_u32(c, gpa);
}

static inline void x86_call(struct gcode *c, uint32_t target)		/* call rel32 */
{
	gc_u8(c, 0xe8);
	gc_u32(c, target - (c->pos + 4));
}

static inline void x86_jmp(struct gcode *c, uint32_t target)		/* jmp rel32 */
{
	gc_u8(c, 0xe9);
	gc_u32(c, target - (c->pos + 4));
}

static inline void x86_jmp8(struct gcode *c, uint32_t target)		/* jmp rel8 */
{
	int32_t rel = (int32_t)(target - (c->pos + 2));

	if (rel < -128 || rel > 127) {
		fprintf(stderr, "guest-code: jmp8 out of range at 0x%x\n", c->pos);
		abort();
	}
	gc_u8(c, 0xeb);
	gc_u8(c, (uint8_t)rel);
}

/* ---- for guests that drive a virtqueue (examples/kvm-virtqueue.c) ---- */

enum { X86_ESI = 6, X86_EDI = 7 };

/* Condition codes for jcc: the low nibble of 0x70 + cc / 0x0f 0x80 + cc. */
enum { X86_CC_B = 0x2, X86_CC_AE = 0x3, X86_CC_E = 0x4, X86_CC_NE = 0x5 };

static inline void x86_out_imm_eax(struct gcode *c, uint8_t port)	/* out imm8, eax */
{
	gc_u8(c, 0xe7);
	gc_u8(c, port);
}

/* mov dword/word/byte [gpa], imm */
static inline void x86_store_imm32(struct gcode *c, uint32_t gpa, uint32_t imm)
{
	gc_u8(c, 0xc7);
	gc_u8(c, 0x05);
	gc_u32(c, gpa);
	gc_u32(c, imm);
}

static inline void x86_store_imm16(struct gcode *c, uint32_t gpa, uint16_t imm)
{
	gc_u8(c, 0x66);
	gc_u8(c, 0xc7);
	gc_u8(c, 0x05);
	gc_u32(c, gpa);
	gc_u16(c, imm);
}

static inline void x86_store_imm8(struct gcode *c, uint32_t gpa, uint8_t imm)
{
	gc_u8(c, 0xc6);
	gc_u8(c, 0x05);
	gc_u32(c, gpa);
	gc_u8(c, imm);
}

/* mov byte [reg + disp32], imm8; reg is not esp (that would need a SIB) */
static inline void x86_store_imm8_idx(struct gcode *c, int reg, uint32_t disp, uint8_t imm)
{
	gc_u8(c, 0xc6);
	gc_u8(c, 0x80 | reg);
	gc_u32(c, disp);
	gc_u8(c, imm);
}

/* mov r32, dword [gpa] / movzx r32, word [gpa] */
static inline void x86_load32(struct gcode *c, int reg, uint32_t gpa)
{
	gc_u8(c, 0x8b);
	gc_u8(c, 0x05 | reg << 3);
	gc_u32(c, gpa);
}

static inline void x86_load16(struct gcode *c, int reg, uint32_t gpa)
{
	gc_u8(c, 0x0f);
	gc_u8(c, 0xb7);
	gc_u8(c, 0x05 | reg << 3);
	gc_u32(c, gpa);
}

/* mov dword [gpa], r32 */
static inline void x86_store_r32(struct gcode *c, int reg, uint32_t gpa)
{
	gc_u8(c, 0x89);
	gc_u8(c, 0x05 | reg << 3);
	gc_u32(c, gpa);
}

static inline void x86_cmp_r32(struct gcode *c, int reg, uint32_t imm)	/* cmp r32, imm32 */
{
	gc_u8(c, 0x81);
	gc_u8(c, 0xf8 | reg);
	gc_u32(c, imm);
}

static inline void x86_cmp_mem16(struct gcode *c, uint32_t gpa, uint16_t imm)	/* cmp word [gpa], imm16 */
{
	gc_u8(c, 0x66);
	gc_u8(c, 0x81);
	gc_u8(c, 0x3d);
	gc_u32(c, gpa);
	gc_u16(c, imm);
}

static inline void x86_cmp_mem8(struct gcode *c, uint32_t gpa, uint8_t imm)	/* cmp byte [gpa], imm8 */
{
	gc_u8(c, 0x80);
	gc_u8(c, 0x3d);
	gc_u32(c, gpa);
	gc_u8(c, imm);
}

static inline void x86_inc_mem32(struct gcode *c, uint32_t gpa)	/* inc dword [gpa] */
{
	gc_u8(c, 0xff);
	gc_u8(c, 0x05);
	gc_u32(c, gpa);
}

static inline void x86_add_eax(struct gcode *c, uint32_t imm)	/* add eax, imm32 */
{
	gc_u8(c, 0x05);
	gc_u32(c, imm);
}

/* jcc rel8 to a later place: returns where to patch with gc_land(). */
static inline uint32_t x86_jcc8_fwd(struct gcode *c, int cc)
{
	gc_u8(c, 0x70 | cc);
	gc_u8(c, 0);
	return c->pos - 1;
}

static inline uint32_t x86_jmp8_fwd(struct gcode *c)
{
	gc_u8(c, 0xeb);
	gc_u8(c, 0);
	return c->pos - 1;
}

/* The forward jump whose rel8 is at 'at' lands here. */
static inline void gc_land(struct gcode *c, uint32_t at)
{
	uint32_t rel = c->pos - (at + 1);

	if (rel > 127) {
		fprintf(stderr, "guest-code: forward jump out of range at 0x%x\n", at);
		abort();
	}
	c->mem[at] = (uint8_t)rel;
}

static inline void x86_loop(struct gcode *c, uint32_t target)		/* loop rel8 (ecx) */
{
	int32_t rel = (int32_t)(target - (c->pos + 2));

	if (rel < -128) {
		fprintf(stderr, "guest-code: loop out of range at 0x%x\n", c->pos);
		abort();
	}
	gc_u8(c, 0xe2);
	gc_u8(c, (uint8_t)rel);
}

static inline void x86_stosd(struct gcode *c)      { gc_u8(c, 0xab); }
static inline void x86_rep_stosd(struct gcode *c)  { gc_u8(c, 0xf3); gc_u8(c, 0xab); }
static inline void x86_repe_cmpsd(struct gcode *c) { gc_u8(c, 0xf3); gc_u8(c, 0xa7); }
static inline void x86_push_eax(struct gcode *c)   { gc_u8(c, 0x50); }
static inline void x86_pop_eax(struct gcode *c)    { gc_u8(c, 0x58); }
static inline void x86_cli(struct gcode *c)        { gc_u8(c, 0xfa); }

static inline void x86_hlt(struct gcode *c)  { gc_u8(c, 0xf4); }
static inline void x86_sti(struct gcode *c)  { gc_u8(c, 0xfb); }
static inline void x86_iret(struct gcode *c) { gc_u8(c, 0xcf); }

/* ---- flat 32-bit protected mode ---- */

/* A GDT with null, code and data descriptors: base 0, limit 4 GiB, G=1, D=1.
 * Only interrupt delivery and iret read it (they load CS from it): KVM takes
 * the segment caches from KVM_SET_SREGS, not from the table. */
static inline void guest_write_gdt(uint8_t *mem, uint32_t gdt_gpa)
{
	static const uint8_t gdt[24] = {
		0, 0, 0, 0, 0, 0, 0, 0,
		0xff, 0xff, 0, 0, 0, 0x9b, 0xcf, 0,	/* code: P, DPL0, exec/read */
		0xff, 0xff, 0, 0, 0, 0x93, 0xcf, 0,	/* data: P, DPL0, read/write */
	};

	memcpy(mem + gdt_gpa, gdt, sizeof(gdt));
}

/* IDT entry: a 32-bit interrupt gate (IF cleared on entry) to handler. */
static inline void guest_set_gate(uint8_t *mem, uint32_t idt_gpa, unsigned int vector,
				  uint32_t handler)
{
	uint8_t *g = mem + idt_gpa + vector * 8;

	g[0] = handler & 0xff;
	g[1] = (handler >> 8) & 0xff;
	g[2] = GC_SEL_CODE;
	g[3] = 0;
	g[4] = 0;
	g[5] = 0x8e;			/* P, DPL0, 32-bit interrupt gate */
	g[6] = (handler >> 16) & 0xff;
	g[7] = handler >> 24;
}

static inline void guest_flat_segment(struct kvm_segment *s, uint16_t sel, uint8_t type)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->dpl = 0;	/* SVM takes the CPL from SS.DPL: Hyper-V hypercalls need CPL 0 */
	s->db = 1;
	s->s = 1;
	s->g = 1;
}

/* Switch sregs to flat 32-bit protected mode, paging off. */
static inline void guest_sregs_flat32(struct kvm_sregs *s, uint32_t gdt_gpa,
				      uint32_t idt_gpa)
{
	guest_flat_segment(&s->cs, GC_SEL_CODE, 0x0b);	/* code, exec/read, accessed */
	guest_flat_segment(&s->ds, GC_SEL_DATA, 0x03);	/* data, read/write, accessed */
	s->es = s->fs = s->gs = s->ss = s->ds;
	s->gdt.base = gdt_gpa;
	s->gdt.limit = 3 * 8 - 1;
	s->idt.base = idt_gpa;
	s->idt.limit = 256 * 8 - 1;
	s->cr0 = 0x11;		/* PE | ET; caches on (reset value has CD|NW set) */
	s->cr4 = 0;
	s->efer = 0;
}

#endif /* HVN_TESTS_GUEST_CODE_H */
