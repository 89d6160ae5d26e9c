package bootimage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Disk describes the partitions of a disk image.
type Disk struct {
	// ESPSize is the EFI system partition's size in bytes, a multiple of
	// a mebibyte (DefaultESPSize if zero). It holds the kernel and
	// initramfs, with room for larger ones.
	ESPSize int64
	// DataSize is the size of the blank data partition, named
	// DataPartitionName, in bytes, a multiple of a mebibyte; 0 makes none.
	DataSize int64
	// Seed makes the disk's and partitions' GUIDs ("kurma" if empty):
	// the same seed gives the same GUIDs.
	Seed string
}

const (
	// DefaultESPSize leaves room for an initramfs several times today's.
	DefaultESPSize = 128 * mib
	// ESPLabel is the EFI system partition's GPT name and FAT label.
	ESPLabel = "KURMA_BOOT"
	// DataPartitionName is the GPT name of the blank data partition.
	DataPartitionName = "KURMA_DATA"
	// fat32Min is the smallest ESP formatted FAT32, as UEFI prefers;
	// smaller ones are FAT16.
	fat32Min = 64 * mib
)

// Layout computes the partition table: the ESP from 1 MiB, the data
// partition after it, 1 MiB left at the end for the backup table.
func (d Disk) Layout() (*GPT, error) {
	esp := d.ESPSize
	if esp == 0 {
		esp = DefaultESPSize
	}
	if esp%mib != 0 || d.DataSize%mib != 0 || d.DataSize < 0 {
		return nil, fmt.Errorf("disk: partition sizes must be whole mebibytes (esp %d, data %d bytes)", esp, d.DataSize)
	}
	if esp < 8*mib {
		return nil, fmt.Errorf("disk: an EFI system partition of %d MiB is too small (at least 8 MiB)", esp/mib)
	}
	seed := d.Seed
	if seed == "" {
		seed = "kurma"
	}
	start := uint64(mib / sectorSize)
	t := &GPT{
		DiskGUID: DerivedGUID(seed, "disk"),
		Sectors:  uint64(mib+esp+d.DataSize+mib) / sectorSize,
		Partitions: []GPTPartition{{
			Type:       TypeESP,
			GUID:       DerivedGUID(seed, "esp"),
			Name:       ESPLabel,
			FirstLBA:   start,
			LastLBA:    start + uint64(esp/sectorSize) - 1,
			Attributes: AttrLegacyBIOSBootable,
		}},
	}
	if d.DataSize > 0 {
		first := start + uint64(esp/sectorSize)
		t.Partitions = append(t.Partitions, GPTPartition{
			Type:     TypeLinuxData,
			GUID:     DerivedGUID(seed, "data"),
			Name:     DataPartitionName,
			FirstLBA: first,
			LastLBA:  first + uint64(d.DataSize/sectorSize) - 1,
		})
	}
	return t, t.check()
}

// BuildDisk writes a raw GPT disk image to out. Its EFI system partition
// holds the kernel and initramfs once, syslinux with its menu for BIOS
// (gptmbr.bin in the protective MBR chain-loads the partition marked
// legacy-BIOS-bootable) and GRUB as the removable-media loader
// EFI/BOOT/BOOTX64.EFI for UEFI. The data partition, if any, is left
// blank. The file is sparse; nothing needs root or a loop device.
func BuildDisk(ctx context.Context, m Media, d Disk, out string) error {
	if err := m.check(); err != nil {
		return err
	}
	for _, f := range []string{gptMBR, syslinuxMods} {
		if err := needFile(f); err != nil {
			return err
		}
	}
	t, err := d.Layout()
	if err != nil {
		return err
	}
	bootCode, err := os.ReadFile(gptMBR)
	if err != nil {
		return err
	}
	if len(bootCode) > 440 {
		bootCode = bootCode[:440]
	}
	t.BootCode = bootCode
	serial := volumeSerial("disk-esp", m)
	t.DiskSignature = serial
	grub, err := grubEFI(ctx, m.Epoch, fatUUID(serial))
	if err != nil {
		return err
	}
	files := map[string]fatFile{
		kernelPath:                       {Source: m.Kernel},
		initrdPath:                       {Source: m.Initrd},
		syslinuxDir + "/" + syslinuxName: {Data: []byte(m.SyslinuxConfig())},
		grubDir + "/grub.cfg":            {Data: []byte(m.GrubConfig())},
		efiBootPath:                      {Data: grub},
	}
	for _, mod := range syslinuxModules {
		if mod == "ldlinux.c32" {
			continue // the installer writes it, matching ldlinux.sys
		}
		files[syslinuxDir+"/"+mod] = fatFile{Source: filepath.Join(syslinuxMods, mod)}
	}
	tmpOut := out + ".tmp"
	defer os.Remove(tmpOut) // after the rename there is nothing left to remove
	esp, err := writeESPDisk(ctx, m.Epoch, t, serial, files, tmpOut)
	if err != nil {
		return err
	}
	// The mtools flavour of the syslinux installer: it writes ldlinux.sys
	// and ldlinux.c32 through mtools and the boot sector in place.
	if err := run(ctx, m.Epoch, "syslinux", "--install", "--directory", syslinuxDir, "--offset", fmt.Sprint(esp.offset), tmpOut); err != nil {
		return err
	}
	return os.Rename(tmpOut, out)
}

// writeESPDisk writes a disk image with the partition table t, whose
// first partition it formats as the FAT EFI system partition holding
// files.
func writeESPDisk(ctx context.Context, epoch time.Time, t *GPT, serial uint32, files map[string]fatFile, out string) (fatImage, error) {
	espPart := t.Partitions[0]
	espSectors := int64(espPart.LastLBA - espPart.FirstLBA + 1)
	esp := fatImage{file: out, offset: int64(espPart.FirstLBA) * sectorSize, epoch: epoch}
	size, err := filesSize(files)
	if err != nil {
		return esp, err
	}
	if size+mib > espSectors*sectorSize {
		return esp, fmt.Errorf("disk: %d MiB of boot files do not fit the %d MiB EFI system partition", size/mib+1, espSectors*sectorSize/mib)
	}
	if err := createFile(out, int64(t.Sectors)*sectorSize); err != nil {
		return esp, err
	}
	f, err := os.OpenFile(out, os.O_RDWR, 0)
	if err != nil {
		return esp, err
	}
	err = t.WriteTo(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return esp, err
	}
	ff := fatFormat{sectors: espSectors, label: ESPLabel, serial: serial, fat32: espSectors*sectorSize >= fat32Min}
	if err := esp.format(ctx, ff); err != nil {
		return esp, err
	}
	return esp, esp.copy(ctx, files)
}

// BuildESPDisk writes a GPT disk image with only an EFI system partition
// holding files (path on the partition → path on this machine), such
// as a UKI as /EFI/BOOT/BOOTX64.EFI: a UEFI machine boots it with no
// loader in between.
func BuildESPDisk(ctx context.Context, epoch time.Time, files map[string]string, out string) error {
	ff := map[string]fatFile{}
	for dst, src := range files {
		ff[dst] = fatFile{Source: src}
	}
	size, err := filesSize(ff)
	if err != nil {
		return err
	}
	espSize := max(fatSectors(size+mib)*sectorSize, 8*mib)
	t, err := Disk{ESPSize: espSize, Seed: "kurma-esp"}.Layout()
	if err != nil {
		return err
	}
	tmp := out + ".tmp"
	defer os.Remove(tmp) // after the rename there is nothing left to remove
	if _, err := writeESPDisk(ctx, epoch, t, 0x4b55524d, ff, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

// ConvertQcow2 writes a qcow2 copy of a raw disk image, for QEMU and
// the clouds that take it; the zeros of the blank space take no room.
func ConvertQcow2(ctx context.Context, raw, out string) error {
	tmp := out + ".tmp"
	defer os.Remove(tmp) // after the rename there is nothing left to remove
	if err := run(ctx, minEpoch, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}
