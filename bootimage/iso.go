package bootimage

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ISOVolumeID is the ISO 9660 volume label of Kurma's ISO.
const ISOVolumeID = "KURMA"

// BuildISO writes a hybrid ISO image to out:
//
//   - BIOS from a CD-ROM: El Torito, isolinux (no emulation);
//   - BIOS from a USB stick or disk: isohdpfx.bin in the MBR starts the
//     same isolinux (isohybrid);
//   - UEFI from a CD-ROM: a second El Torito entry, the FAT image holding
//     GRUB; UEFI from a USB stick or disk: the same FAT image as an EFI
//     system partition in the MBR and GPT tables.
//
// Both loaders read the one copy of the kernel and initramfs from the ISO
// 9660 tree. xorriso writes it as a file, without loop devices.
func BuildISO(ctx context.Context, m Media, out string) error {
	if err := m.check(); err != nil {
		return err
	}
	for _, f := range []string{isolinuxBin, isohybridMBR, syslinuxMods} {
		if err := needFile(f); err != nil {
			return err
		}
	}
	tmp, err := os.MkdirTemp(filepath.Dir(out), ".kurma-iso-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	// GRUB finds the ISO 9660 tree by its UUID, which is its
	// modification date: the epoch.
	date := m.Epoch.UTC().Format("20060102150405") + "00"
	uuid := m.Epoch.UTC().Format("2006-01-02-15-04-05") + "-00"
	grub, err := grubEFI(ctx, m.Epoch, uuid)
	if err != nil {
		return err
	}
	esp := fatImage{file: filepath.Join(tmp, "esp.img"), epoch: m.Epoch}
	espFiles := map[string]fatFile{efiBootPath: {Data: grub}}
	size, err := filesSize(espFiles)
	if err != nil {
		return err
	}
	sectors := fatSectors(size)
	if err := createFile(esp.file, sectors*sectorSize); err != nil {
		return err
	}
	if err := esp.format(ctx, fatFormat{sectors: sectors, label: "KURMA_EFI", serial: volumeSerial("iso-esp", m)}); err != nil {
		return err
	}
	if err := esp.copy(ctx, espFiles); err != nil {
		return err
	}

	// The ISO 9660 tree, grafted from where the files are.
	cfgs := map[string]string{
		syslinuxDir + "/" + syslinuxName: m.SyslinuxConfig(),
		grubDir + "/grub.cfg":            m.GrubConfig(),
	}
	graft := map[string]string{
		kernelPath:                    m.Kernel,
		initrdPath:                    m.Initrd,
		syslinuxDir + "/isolinux.bin": isolinuxBin,
	}
	for _, mod := range syslinuxModules {
		graft[syslinuxDir+"/"+mod] = filepath.Join(syslinuxMods, mod)
	}
	i := 0
	for dst, data := range cfgs {
		src := filepath.Join(tmp, fmt.Sprintf("cfg%d", i))
		i++
		if err := os.WriteFile(src, []byte(data), 0o644); err != nil {
			return err
		}
		graft[dst] = src
	}
	args := []string{"-as", "mkisofs", "-o", out + ".tmp",
		"-V", ISOVolumeID, "-iso-level", "3", "-r",
		"--modification-date=" + date, "--set_all_file_dates", date,
		"-b", strings.TrimPrefix(syslinuxDir, "/") + "/isolinux.bin",
		"-c", strings.TrimPrefix(syslinuxDir, "/") + "/boot.cat",
		"-no-emul-boot", "-boot-load-size", "4", "-boot-info-table",
		"-isohybrid-mbr", isohybridMBR,
		"-eltorito-alt-boot", "-e", "--interval:appended_partition_2:all::", "-no-emul-boot",
		"-isohybrid-gpt-basdat", "-append_partition", "2", "0xef", esp.file,
		"-graft-points",
	}
	for _, dst := range sortedKeys(graft) {
		args = append(args, strings.TrimPrefix(dst, "/")+"="+graft[dst])
	}
	if err := run(ctx, m.Epoch, "xorriso", args...); err != nil {
		_ = os.Remove(out + ".tmp") // a partial image is of no use
		return err
	}
	return os.Rename(out+".tmp", out)
}

// volumeSerial is a FAT volume serial derived from the medium's role and
// version, the same in every build.
func volumeSerial(role string, m Media) uint32 {
	sum := sha256.Sum256([]byte("kurma-fat\x00" + role + "\x00" + m.version()))
	return binary.LittleEndian.Uint32(sum[:4])
}

// fatUUID is how GRUB and Linux write a FAT volume serial.
func fatUUID(serial uint32) string {
	return fmt.Sprintf("%04x-%04x", serial>>16, serial&0xffff)
}

// createFile makes an empty (sparse) file of size bytes.
func createFile(name string, size int64) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
